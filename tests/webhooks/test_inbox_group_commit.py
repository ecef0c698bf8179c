"""The webhook inbox's group commit on real PostgreSQL with real threads: deliveries stored at the
same moment share one guarded INSERT, and each still gets exactly its own answer — stored,
duplicate, refused for its seller, refused for its data (docs/WEBHOOKS.md, "Group commit").

A batch is formed deterministically: a second connection holds a SHARE lock on the inbox table,
so the first delivery's statement waits in PostgreSQL while the others queue behind it."""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, connections

from inventory.models import ConnectionState
from syncops.models import WebhookEvent
from syncops.selectors.webhooks import webhook_target
from syncops.services import webhooks as inbox
from syncops.services.webhooks import WebhookRejected, webhook_receive
from tests.webhooks import builders
from tests.webhooks.conftest import Shop, make_shop

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def table_lock() -> Iterator[psycopg.Connection]:
    """A connection that can hold the inbox table in SHARE mode (INSERTs wait, nothing else)."""
    params = {k: v for k, v in connection.get_connection_params().items() if k not in ("context", "cursor_factory")}
    with psycopg.connect(**params) as conn:
        yield conn


def _deliver(shop: Shop, doc: dict[str, Any], target: Any = None) -> Any:
    body, signature = builders.signed(doc, shop.secret)
    try:
        return webhook_receive(target=target or webhook_target(shop.settings.webhook_id, fresh=True),
                               body=body, signature=signature)
    except WebhookRejected as exc:
        return exc
    finally:
        connections.close_all()  # this thread's connection: the test database is dropped later


def _order_doc(order_id: int, **kw: Any) -> dict[str, Any]:
    return builders.delivery(builders.order(order_id, "paid", [(7, 1)]), cause="order.create", **kw)


def _blocked_on_lock(timeout: float = 10.0) -> None:
    """Wait until some backend of this database waits for a lock (the leader's INSERT)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                return
            assert time.monotonic() < deadline, "the first delivery never reached PostgreSQL"
            time.sleep(0.005)


def _in_one_batch(lock: psycopg.Connection, lead: tuple, rest: list[tuple]) -> dict[str, Any]:
    """Run ``lead`` while the table is locked, queue ``rest`` behind it, release: every answer."""
    out: dict[str, Any] = {}

    def run(name: str, *args: Any) -> None:
        out[name] = _deliver(*args)

    lock.execute(f"LOCK TABLE {WebhookEvent._meta.db_table} IN SHARE MODE")
    threads = [threading.Thread(target=run, args=lead)]
    threads[0].start()
    _blocked_on_lock()
    for args in rest:
        threads.append(threading.Thread(target=run, args=args))
        threads[-1].start()
    deadline = time.monotonic() + 10
    while len(inbox._inbox._pending) < len(rest):
        assert time.monotonic() < deadline, "the other deliveries did not queue behind the first"
        time.sleep(0.001)
    lock.rollback()  # release the table: the leader's statement runs, then the queued batch's
    for thread in threads:
        thread.join(20)
    return out


def test_concurrent_deliveries_share_one_statement_and_each_gets_its_own_answer(table_lock):
    shop, gone = make_shop(), make_shop()
    stale_gone = webhook_target(gone.settings.webhook_id, fresh=True)
    gone.settings.connection_state = ConnectionState.DISCONNECTED  # after its target was cached
    gone.settings.save()
    earlier = _order_doc(501)
    assert _deliver(shop, earlier).duplicate is False
    statements, rows = inbox._inbox.statements, inbox._inbox.rows

    fresh = [_order_doc(510 + i) for i in range(3)]
    out = _in_one_batch(table_lock, ("lead", shop, _order_doc(509)), [
        *((f"fresh{i}", shop, doc) for i, doc in enumerate(fresh)),
        ("dup", shop, dict(earlier)),
        ("gone", gone, _order_doc(520), dataclasses.replace(stale_gone, confirmed=False)),
    ])

    assert inbox._inbox.statements - statements == 2  # the leader's, then one for the other five
    assert inbox._inbox.rows - rows == 6
    stored = {r.delivery_id: r.pk for r in WebhookEvent.objects.all()}
    for i, doc in enumerate(fresh):
        receipt = out[f"fresh{i}"]
        assert not receipt.duplicate and stored[doc["id"]] == receipt.event_id
    assert out["dup"].duplicate is True and out["dup"].event_id is None
    assert isinstance(out["gone"], WebhookRejected) and out["gone"].status == 410
    assert set(stored) == {earlier["id"], out["lead"].delivery_id, *(doc["id"] for doc in fresh)}
    assert WebhookEvent.objects.filter(seller=gone.user).count() == 0


def test_a_delivery_the_database_refuses_fails_alone_in_its_batch(table_lock):
    shop = make_shop()
    good = [_order_doc(601), _order_doc(602)]
    nul = _order_doc(603)
    nul["data"]["buyer"]["username"] = "nul\u0000"  # valid JSON, refused by jsonb
    out = _in_one_batch(table_lock, ("lead", shop, _order_doc(600)),
                        [("good0", shop, good[0]), ("nul", shop, nul), ("good1", shop, good[1])])
    assert isinstance(out["nul"], WebhookRejected) and (out["nul"].status, out["nul"].code) == (400, "invalid_delivery")
    assert not out["good0"].duplicate and not out["good1"].duplicate
    assert set(WebhookEvent.objects.values_list("delivery_id", flat=True)) == {
        out["lead"].delivery_id, good[0]["id"], good[1]["id"]}


def test_inside_a_transaction_a_delivery_is_written_on_the_callers_own_connection():
    """A caller's atomic block (and tests' transactions) must see its own row and roll it back:
    such a delivery never joins another thread's statement."""
    from django.db import transaction

    shop = make_shop()
    statements = inbox._inbox.statements
    doc = _order_doc(701)
    body, signature = builders.signed(doc, shop.secret)
    with transaction.atomic():
        receipt = webhook_receive(target=webhook_target(shop.settings.webhook_id, fresh=True), body=body,
                                  signature=signature)
        assert WebhookEvent.objects.filter(pk=receipt.event_id).exists()
        transaction.set_rollback(True)
    assert inbox._inbox.statements == statements
    assert not WebhookEvent.objects.filter(delivery_id=doc["id"]).exists()


def test_a_dead_inbox_connection_is_replaced_and_the_delivery_still_stored():
    """PostgreSQL restarted or failed over under a live process: the inbox's long-lived connection
    is dead. The next delivery is stored on a new one, not answered 500."""
    shop = make_shop()
    assert _deliver(shop, _order_doc(801)).duplicate is False
    pid = inbox.inbox_connection.current().connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    receipt = _deliver(shop, _order_doc(802))
    assert not isinstance(receipt, WebhookRejected), receipt
    assert receipt.duplicate is False and WebhookEvent.objects.filter(pk=receipt.event_id).exists()
    assert inbox.inbox_connection.current().connection.info.backend_pid != pid


def test_storing_a_delivery_outside_a_transaction_never_opens_the_requests_connection(redis_client):
    """The request's own connection (a pool checkout and return) is not needed: the statement runs
    on the inbox's connection, and the hand-off needs no on_commit (the row is committed)."""
    from django.conf import settings

    shop = make_shop()
    target = webhook_target(shop.settings.webhook_id, fresh=True)
    body, signature = builders.signed(_order_doc(901), shop.secret)
    connection.close()
    try:
        receipt = webhook_receive(target=target, body=body, signature=signature)
        assert receipt.state == "received" and inbox.auto_apply_enabled()  # so it was handed off
        assert connection.connection is None
    finally:
        time.sleep(inbox.settings.WEBHOOK_HANDOFF_LINGER_MS / 1000 + 0.2)  # let the hand-off publish
        redis_client.delete(f"{settings.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']}high-priority")


def test_every_column_is_stored_as_given():
    """The small columns travel as JSON (UUIDs and times as text) and come back exact, to the
    microsecond; the body is the signed text's document."""
    from datetime import UTC, datetime

    shop = make_shop()
    sent = int(time.time()) - 5
    doc = _order_doc(1001, at=sent)
    before = datetime.now(UTC)
    receipt = _deliver(shop, doc)
    row = WebhookEvent.objects.get(pk=receipt.event_id)
    assert (row.delivery_id, row.seller_id, row.cause, row.object_class, row.object_id, row.mode) == (
        doc["id"], shop.user.pk, "order.create", "Order", 1001, "live")
    assert row.sent_at == datetime.fromtimestamp(sent, tz=UTC)
    assert before <= row.received_at <= datetime.now(UTC)
    assert row.dispatched_at == row.received_at and row.applied_at is None  # one value, both columns, exact
    assert (row.state, row.attempts, row.error) == ("received", 0, "")
    assert row.payload == doc


def test_a_forked_child_opens_its_own_inbox_connection_and_leaves_the_parents_alone():
    """A process forked after the inbox connected (a pre-forking server with the app loaded) must
    neither use nor close its parent's socket: one of them would read the other's answers."""
    import os

    shop = make_shop()
    assert _deliver(shop, _order_doc(1101)).duplicate is False
    parent_pid = inbox.inbox_connection.current().connection.info.backend_pid
    child_doc = _order_doc(1102)
    child = os.fork()
    if child == 0:  # the child: exit code 0 only if its delivery was stored on a connection of its own
        code = 1
        try:
            for db in connections.all(initialized_only=True):
                db.connection = None  # the request thread's inherited connection: drop it unused
            receipt = _deliver(shop, child_doc)
            mine = inbox.inbox_connection.current().connection.info.backend_pid
            code = 0 if not receipt.duplicate and mine != parent_pid else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert WebhookEvent.objects.filter(delivery_id=child_doc["id"]).exists()
    # the parent's connection is the one it had, and still answers
    assert inbox.inbox_connection.current().connection.info.backend_pid == parent_pid
    assert _deliver(shop, _order_doc(1103)).duplicate is False
