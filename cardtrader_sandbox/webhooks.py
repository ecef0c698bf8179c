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


class _Lane:
    """One account's delivery queue and thread: a slow receiver only delays its own account,
    and one account's events go out in order unless a fault says otherwise."""

    def __init__(self, dispatcher: WebhookDispatcher, user_id: int) -> None:
        self.dispatcher = dispatcher
        self.cond = threading.Condition()
        self.heap: list[tuple[float, int, Delivery]] = []
        self.held: Delivery | None = None  # reorder fault: waiting to be overtaken
        self.thread = threading.Thread(target=self.run, name=f"webhooks-{user_id}", daemon=True)
        self.thread.start()

    def push(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self.heap, (due, next(self.dispatcher.seq), delivery))

    def reschedule(self, delivery: Delivery, due: float) -> None:
        self.heap = [entry for entry in self.heap if entry[2] is not delivery]
        heapq.heapify(self.heap)
        self.push(due, delivery)

    def clear(self) -> None:
        with self.cond:
            self.heap.clear()
            self.held = None

    def run(self) -> None:
        while True:
            with self.cond:
                while not self.heap or self.heap[0][0] > time.monotonic():
                    timeout = None if not self.heap else max(0.0, self.heap[0][0] - time.monotonic())
                    self.cond.wait(timeout)
                _, _, delivery = heapq.heappop(self.heap)
                if delivery is self.held:
                    self.held = None
            retry = self.dispatcher.attempt(delivery)
            if retry is not None:
                with self.cond:
                    self.push(*retry)
                    self.cond.notify()


class WebhookDispatcher:
    def __init__(self, world: World) -> None:
        self.world = world
        self.seq = itertools.count()
        self._lock = threading.Lock()
        self._lanes: dict[int, _Lane] = {}
        self._rng = random.Random(0)

    def reset(self) -> None:
        with self._lock:
            for lane in self._lanes.values():
                lane.clear()

    def _lane(self, user_id: int) -> _Lane:
        with self._lock:
            lane = self._lanes.get(user_id)
            if lane is None:
                lane = self._lanes[user_id] = _Lane(self, user_id)
            return lane

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
        lane = self._lane(acct.user_id)
        with lane.cond:
            copies = 2 if duplicate > 0 and self._rng.random() < duplicate else 1
            if reorder:
                if lane.held is None:
                    # hold this one until the next event overtakes it (or 1 s passes)
                    lane.held = delivery
                    lane.push(now + delay + 1.0, delivery)
                else:
                    held, lane.held = lane.held, None
                    lane.push(now + delay, delivery)
                    lane.reschedule(held, now + delay + 0.05)
                for _ in range(copies - 1):
                    lane.push(now + delay + 0.1, _copy(delivery))
            else:
                for _ in range(copies):
                    lane.push(now + delay, _copy(delivery))
            lane.cond.notify()
        return payload["id"]

    def attempt(self, d: Delivery) -> tuple[float, Delivery] | None:
        """POST once and log it; return (due, retry) if it failed and attempts remain."""
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
            return time.monotonic() + backoff, retry
        return None


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
