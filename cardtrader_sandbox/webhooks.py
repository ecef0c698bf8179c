"""Signed webhook deliveries, sent from one background thread so no API or control request ever
waits on a receiver.

The body is serialised once and those exact bytes are both signed and sent:
``Signature = base64(HMAC-SHA256(key=shared_secret as UTF-8, msg=raw body))``. Fault switches can
duplicate a delivery (same id, same bytes), swap consecutive deliveries, or delay them; a failed
attempt (non-2xx or connection error) is retried with a short backoff. Every attempt is logged.
"""
from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPSConnection
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .state import Account, World


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


@dataclass
class Delivery:
    delivery_id: str
    user_id: int
    url: str
    body: bytes
    signature: str
    cause: str
    order_id: int
    attempt: int = 1


class WebhookDispatcher:
    def __init__(self, world: World) -> None:
        self.world = world
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._held: Delivery | None = None  # reorder fault: waiting to be overtaken
        self._rng = random.Random(0)
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def reset(self) -> None:
        with self._cond:
            self._heap.clear()
            self._held = None

    def enqueue(self, acct: Account, cause: str, order_id: int, data: dict) -> str | None:
        """Build, sign and queue one event. Returns its id, or None if the account has no URL."""
        if not acct.webhook_url:
            return None
        payload = {"id": str(uuid.uuid4()), "time": int(time.time()), "cause": cause, "object_class": "Order",
                   "object_id": order_id, "mode": "live", "data": data}
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        delivery = Delivery(payload["id"], acct.user_id, acct.webhook_url, body, sign(acct.shared_secret, body),
                            cause, order_id)
        world = self.world
        delay = float(world.fault("webhook_delay_ms", acct.user_id) or 0) / 1000.0
        duplicate = float(world.fault("webhook_duplicate_rate", acct.user_id) or 0)
        reorder = bool(world.fault("webhook_reorder", acct.user_id))
        now = time.monotonic()
        with self._cond:
            copies = 2 if duplicate > 0 and self._rng.random() < duplicate else 1
            if reorder:
                if self._held is None:
                    # hold this one until the next event overtakes it (or 1 s passes)
                    self._held = delivery
                    self._push(now + delay + 1.0, delivery)
                else:
                    held, self._held = self._held, None
                    self._push(now + delay, delivery)
                    self._reschedule(held, now + delay + 0.05)
                for _ in range(copies - 1):
                    self._push(now + delay + 0.1, _copy(delivery))
            else:
                for _ in range(copies):
                    self._push(now + delay, _copy(delivery))
            self._cond.notify()
        return payload["id"]

    def _push(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), delivery))

    def _reschedule(self, delivery: Delivery, due: float) -> None:
        self._heap = [entry for entry in self._heap if entry[2] is not delivery]
        heapq.heapify(self._heap)
        self._push(due, delivery)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic())
                    self._cond.wait(timeout)
                _, _, delivery = heapq.heappop(self._heap)
                if delivery is self._held:
                    self._held = None
            self._attempt(delivery)

    def _attempt(self, d: Delivery) -> None:
        cfg = self.world.config
        status: int | None = None
        error = None
        try:
            status = _post(d.url, d.body, d.signature, float(cfg["webhook_timeout_seconds"]))
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.world.webhook_log.append({
            "delivery_id": d.delivery_id, "user_id": d.user_id, "url": d.url, "status": status, "error": error,
            "time": time.time(), "cause": d.cause, "order_id": d.order_id, "attempt": d.attempt,
        })
        if (status is None or not 200 <= status < 300) and d.attempt < int(cfg["webhook_max_attempts"]):
            backoff = float(cfg["webhook_backoff_seconds"]) * (2 ** (d.attempt - 1))
            retry = _copy(d)
            retry.attempt = d.attempt + 1
            with self._cond:
                self._push(time.monotonic() + backoff, retry)
                self._cond.notify()


def _copy(d: Delivery) -> Delivery:
    return Delivery(d.delivery_id, d.user_id, d.url, d.body, d.signature, d.cause, d.order_id, d.attempt)


def _post(url: str, body: bytes, signature: str, timeout: float) -> int:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad webhook url {url!r}")
    cls: Any = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/json", "Signature": signature, "User-Agent": "CardTrader-Sandbox-Webhooks",
        })
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()
