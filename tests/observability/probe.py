"""Test-only tasks and views: registered only by the observability tests (``--include`` for a
worker subprocess, ``ROOT_URLCONF`` for the web), never by the project itself."""
from __future__ import annotations

import logging
import time

import redis
import structlog
from celery import shared_task
from django.conf import settings
from django.http import HttpRequest, JsonResponse

log = structlog.get_logger("tests.observability.probe")
careless = logging.getLogger("tests.observability.careless")


@shared_task(name="tests.observability.log_probe", acks_late=True, ignore_result=True)
def log_probe(seller_id: str) -> str:
    log.info("probe_task_ran")
    return seller_id


@shared_task(name="tests.observability.slow_probe", acks_late=True, ignore_result=True)
def slow_probe(marker: str, seconds: float) -> None:
    """Sleeps, then records that it finished: the marker says the run was not cut short."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.rpush(marker, "started")
    time.sleep(seconds)
    client.rpush(marker, "finished")
    client.expire(marker, 600)


def enqueue_view(request: HttpRequest, seller_uuid: str) -> JsonResponse:
    """Logs one line and enqueues a task on the queue the test names (never a project queue)."""
    log.info("probe_enqueue")
    log_probe.apply_async(args=[seller_uuid], queue=request.GET["queue"])
    return JsonResponse({"ok": True})


def slow_view(request: HttpRequest) -> JsonResponse:
    time.sleep(float(request.GET.get("seconds", "3")))
    return JsonResponse({"done": True})


def careless_view(request: HttpRequest) -> JsonResponse:
    """A call site that forgot every rule: logs headers, a secret and an exception with a token."""
    careless.warning("incoming headers: %s", dict(request.headers))
    careless.info("verifying with shared_secret=%s", request.GET.get("s", ""))
    careless.info("request meta", extra={"authorization": request.headers.get("Authorization"),
                                         "payload": {"cardtrader_token": request.GET.get("t", "")}})
    try:
        raise RuntimeError(f"CardTrader refused Authorization: Bearer {request.GET.get('t', '')}")
    except RuntimeError:
        careless.exception("call failed")
    structlog.get_logger("tests.observability.careless").info("client built", headers={
        "Authorization": f"Bearer {request.GET.get('t', '')}", "Signature": request.headers.get("Signature", "")})
    return JsonResponse({"ok": True})
