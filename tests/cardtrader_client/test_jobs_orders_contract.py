"""Contract tests: bulk jobs (their own bucket) and orders."""
from __future__ import annotations

import time

import pytest

from ratelimit.guard import Bucket
from syncops.cardtrader import RateLimited


@pytest.fixture
def fast_jobs(control):
    control.set_config(job_pending_seconds=0, job_running_seconds=0)
    yield
    control.set_config(job_pending_seconds=1, job_running_seconds=1)


def _wait_job(client, uuid, timeout=10.0):
    """Poll as a caller must: the client never retries, so a 429 is waited out here."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            job = client.get_job(uuid)
        except RateLimited as exc:
            time.sleep(exc.retry_after)
            continue
        if job.finished or time.monotonic() > deadline:
            return job
        time.sleep(1.05)  # /jobs allows 1 request per second


def _blueprint_ids(control, sandbox_account, client, n):
    return [b.id for b in client.blueprints_export(1)][:n]


def test_bulk_create_update_destroy_with_per_item_results(client, control, sandbox_account, guard, fast_jobs):
    bp1, bp2 = _blueprint_ids(control, sandbox_account, client, 2)
    uuid = client.bulk_create([
        {"blueprint_id": bp1, "price_cents": 250, "quantity": 2},
        {"blueprint_id": 0, "price_cents": 250, "quantity": 1},  # no such blueprint: item error
        {"blueprint_id": bp2, "price_cents": 399, "quantity": 1, "properties": {"mtg_foil": False}},
    ])
    job = _wait_job(client, uuid)
    assert job.uuid == uuid and job.state == "completed"
    assert [r.index for r in job.results] == [0, 1, 2]
    assert [r.result for r in job.results][1] == "error" and job.results[1].errors
    ok = [r for r in job.results if r.result != "error"]
    assert len(ok) == 2 and all(r.product_id for r in ok)
    assert job.stats.get("error") == 1

    stock = {p["id"]: p for p in control.products(sandbox_account.user_id)}
    first = ok[0].product_id
    assert stock[first]["price_cents"] == 250

    uuid = client.bulk_update([{"id": first, "price_cents": 1234, "quantity": 7}])
    job = _wait_job(client, uuid)
    assert job.results[0].result in ("ok", "warning")
    row = next(p for p in control.products(sandbox_account.user_id) if p["id"] == first)
    assert (row["price_cents"], row["quantity"]) == (1234, 7)

    uuid = client.bulk_destroy([r.product_id for r in ok])
    job = _wait_job(client, uuid)
    assert [r.result for r in job.results] == ["ok", "ok"]
    assert control.products(sandbox_account.user_id) == []

    jobs_acquires = [e for e in guard.events if e[0] == "acquire" and e[2] == Bucket.JOBS]
    job_gets = [e for e in control.request_log(sandbox_account.user_id) if e["path"].startswith("/api/v2/jobs/")]
    assert len(jobs_acquires) == len(job_gets) >= 3
    others = [e for e in guard.events if e[0] == "acquire" and e[2] == Bucket.GLOBAL]
    assert len(others) == len(control.request_log(sandbox_account.user_id)) - len(job_gets)


def test_job_moves_from_pending(client, control):
    control.set_config(job_pending_seconds=5, job_running_seconds=5)
    try:
        bp = client.blueprints_export(1)[0].id
        uuid = client.bulk_create([{"blueprint_id": bp, "price_cents": 100, "quantity": 1}])
        job = client.get_job(uuid)
        assert job.state == "pending" and not job.finished
    finally:
        control.set_config(job_pending_seconds=1, job_running_seconds=1)


def test_empty_bulk_is_refused_before_sending(client, guard):
    with pytest.raises(ValueError):
        client.bulk_update([])
    assert guard.events == []


def test_orders_list_and_detail(client, control, sandbox_account):
    bp = client.blueprints_export(1)[0].id
    pid = client.create_product({"blueprint_id": bp, "price_cents": 300, "quantity": 5}).product.id
    sold = control.sell(sandbox_account.user_id, items=[{"product_id": pid, "quantity": 2}])
    orders = client.orders(page=1, limit=10)
    assert [o.id for o in orders] == [sold["id"]]
    order = client.order(sold["id"])
    assert order.state == "paid" and not order.via_cardtrader_zero
    assert order.items[0].product_id == pid and order.items[0].quantity == 2
    assert client.orders(page=2, limit=10) == []
    with pytest.raises(ValueError):
        client.orders(limit=101)


def test_orders_filter_by_state_and_ct0(client, control, sandbox_account):
    bp = client.blueprints_export(1)[0].id
    pid = client.create_product({"blueprint_id": bp, "price_cents": 300, "quantity": 5}).product.id
    ct0 = control.sell(sandbox_account.user_id, items=[{"product_id": pid, "quantity": 1}], via_cardtrader_zero=True)
    control.sell(sandbox_account.user_id, items=[{"product_id": pid, "quantity": 1}])
    pending = client.orders(state="hub_pending")
    assert [o.id for o in pending] == [ct0["id"]]
    assert pending[0].via_cardtrader_zero and pending[0].items[0].hub_pending_order_id == ct0["id"]
