"""Signed webhooks delivered to a real local HTTP receiver."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """A tiny webhook endpoint standing in for the service: records raw bodies and headers and
    answers with scripted statuses (200 once the script runs out)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []
        self.cond = threading.Condition()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.cond:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.received.append((dict(self.headers), body))
                    outer.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cardtrader"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[dict, bytes]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"only {len(self.received)} of {n} webhooks arrived")
                self.cond.wait(left)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def shop(control, receiver):
    acct = control.create_account(name="Hooked", webhook_url=receiver.url)
    pid = control.add_product(acct.user_id, blueprint_id=6, price=2.0, quantity=10)["id"]
    return acct, pid


def wait_log(control, user_id, n, timeout=5.0):
    """The sandbox logs an attempt once the receiver has answered, just after the receiver saw it."""
    deadline = time.monotonic() + timeout
    while len(log := control.webhook_log(user_id)) < n:
        assert time.monotonic() < deadline, log
        time.sleep(0.02)
    return log


def verify(secret: str, body: bytes, signature: str) -> bool:
    """How CardTrader's signature is checked: base64 HMAC-SHA256 of the raw body, secret as UTF-8."""
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature)


def test_sale_delivers_a_signed_order_create(control, receiver, shop):
    acct, pid = shop
    order = control.sell(acct.user_id, [{"product_id": pid, "quantity": 1}])
    [(headers, body)] = receiver.wait_for(1)
    assert headers["Content-Type"] == "application/json"
    assert verify(acct.shared_secret, body, headers["Signature"])
    tampered = bytearray(body)
    tampered[len(tampered) // 2] ^= 0x01
    assert not verify(acct.shared_secret, bytes(tampered), headers["Signature"])
    assert not verify("0" * 32, body, headers["Signature"])
    event = json.loads(body)
    assert set(event) == {"id", "time", "cause", "object_class", "object_id", "mode", "data"}
    assert event["cause"] == "order.create" and event["object_class"] == "Order" and event["mode"] == "live"
    assert event["object_id"] == order["id"] and event["data"] == order
    assert isinstance(event["time"], int) and abs(event["time"] - time.time()) < 60
    assert len(event["id"]) == 36
    log = wait_log(control, acct.user_id, 1)
    assert [(e["cause"], e["order_id"], e["status"], e["url"]) for e in log] == [
        ("order.create", order["id"], 200, receiver.url)]
    assert log[0]["delivery_id"] == event["id"]


def test_update_and_destroy_events_and_none_for_own_api_writes(control, receiver, shop, make_api):
    acct, pid = shop
    api = make_api(acct.token)
    oid = control.sell(acct.user_id, [{"product_id": pid, "quantity": 1}])["id"]
    receiver.wait_for(1)
    # the token's own writes and "website" edits never fire webhooks
    api.post("/products", json={"blueprint_id": 7, "price": 1, "quantity": 1})
    api.put(f"/products/{pid}", json={"quantity": 3})
    api.put(f"/orders/{oid}/ship")
    control.update_product(acct.user_id, pid, quantity=4)
    control.transition_order(acct.user_id, oid, "arrived")
    control.destroy_order(acct.user_id, oid)
    events = [json.loads(b) for _, b in receiver.wait_for(3)]
    time.sleep(0.3)
    assert len(receiver.received) == 3
    assert [e["cause"] for e in events] == ["order.create", "order.update", "order.destroy"]
    assert events[1]["data"]["state"] == "arrived"
    assert events[2]["data"] == {} and events[2]["object_id"] == oid


def test_api_request_is_not_blocked_by_a_slow_receiver(control, shop, cardtrader_sandbox):
    """Deliveries run on a background thread: sell returns before a hanging receiver answers."""
    import socket

    acct, pid = shop
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(1)  # accepts the connection, never answers
    control.set_webhook_url(acct.user_id, f"http://127.0.0.1:{hang.getsockname()[1]}/")
    try:
        started = time.monotonic()
        control.sell(acct.user_id, [{"product_id": pid, "quantity": 1}])
        assert time.monotonic() - started < 1.0
    finally:
        hang.close()


@pytest.mark.usefixtures("restore_config")
def test_failed_delivery_is_retried_with_the_same_id_and_bytes(control, receiver, shop):
    acct, pid = shop
    control.set_config(webhook_backoff_seconds=0.05)
    receiver.statuses = [500, 503]
    control.sell(acct.user_id, [{"product_id": pid, "quantity": 1}])
    got = receiver.wait_for(3)
    assert len({body for _, body in got}) == 1
    assert len({h["Signature"] for h, _ in got}) == 1
    log = wait_log(control, acct.user_id, 3)
    assert [(e["attempt"], e["status"]) for e in log] == [(1, 500), (2, 503), (3, 200)]


@pytest.mark.usefixtures("restore_config")
def test_duplicate_reorder_and_delay_faults(control, receiver, shop):
    acct, pid = shop
    uid = acct.user_id
    control.set_faults(webhook_duplicate_rate=1.0, user_id=uid)
    control.sell(uid, [{"product_id": pid, "quantity": 1}])
    first, second = receiver.wait_for(2)
    assert first[1] == second[1]  # same delivery id, same bytes, twice
    control.clear_faults(uid)

    control.set_faults(webhook_reorder=True, user_id=uid)
    a = control.sell(uid, [{"product_id": pid, "quantity": 1}])["id"]
    b = control.sell(uid, [{"product_id": pid, "quantity": 1}])["id"]
    got = [json.loads(body)["object_id"] for _, body in receiver.wait_for(4)[2:]]
    assert got == [b, a]
    control.clear_faults(uid)

    control.set_faults(webhook_delay_ms=700, user_id=uid)
    sent = time.monotonic()
    control.sell(uid, [{"product_id": pid, "quantity": 1}])
    receiver.wait_for(5)
    assert time.monotonic() - sent >= 0.65
