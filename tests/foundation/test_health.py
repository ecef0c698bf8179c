"""Liveness and readiness against the real services, and against dead ones."""
import socket
import time

import pytest
from django.db import connections

from brxsync import health


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_answers_without_touching_dependencies(client):
    assert client.get("/health/live").json() == {"status": "ok"}


@pytest.mark.django_db(databases=["default", "blueprints"])
def test_ready_is_200_with_every_check(client):
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {"database", "blueprints", "redis", "broker"}
    assert all(c["ok"] for c in body["checks"].values())


@pytest.mark.django_db(databases=["default", "blueprints"])
def test_ready_names_redis_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    started = time.monotonic()
    response = client.get("/health/ready")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert "redis" in response.json()["failing"]
    assert "database" not in response.json()["failing"]


@pytest.mark.django_db(databases=["default", "blueprints"])
def test_ready_names_blueprints_when_mariadb_is_unreachable(client, settings):
    original = dict(settings.DATABASES["blueprints"])
    connections["blueprints"].close()
    connections["blueprints"].settings_dict["PORT"] = str(_closed_port())
    try:
        started = time.monotonic()
        response = client.get("/health/ready")
        assert time.monotonic() - started < 2
    finally:
        connections["blueprints"].close()
        connections["blueprints"].settings_dict.update(original)
    assert response.status_code == 503
    assert response.json()["failing"] == ["blueprints"]


def test_a_hanging_check_is_cut_at_the_timeout():
    results = health.run_checks({"slow": lambda: time.sleep(3), "fast": lambda: None}, timeout=0.3)
    assert results["fast"] == {"ok": True}
    assert results["slow"]["ok"] is False and "timed out" in results["slow"]["error"]


def test_metrics_endpoint_serves_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"# TYPE" in response.content
