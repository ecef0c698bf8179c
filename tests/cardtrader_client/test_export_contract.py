"""Contract tests: the streamed /products/export."""
from __future__ import annotations

import tracemalloc

import pytest

from ratelimit.guard import Outcome
from syncops.cardtrader import Product, Timeout

from .conftest import RecordingGuard


def test_export_of_20000_products_yields_exactly_what_the_sandbox_holds(client, control, sandbox_account, guard):
    assert control.seed_products(sandbox_account.user_id, 20_000, seed=7) == 20_000
    expected = {p["id"]: Product.from_json(p) for p in control.products(sandbox_account.user_id)}
    seen: dict[int, Product] = {}
    for product in client.export_products():
        assert product.id not in seen  # no duplicates
        seen[product.id] = product
    assert seen == expected
    assert len(seen) == 20_000
    assert guard.outcomes == [Outcome.OK]  # one request, recorded once, at the end


def test_export_is_streamed_not_loaded(client, control, sandbox_account):
    """Peak Python allocations while streaming stay far below the body size (the benchmark
    measures RSS for 250,000; this guards the property cheaply)."""
    control.seed_products(sandbox_account.user_id, 5_000, seed=1)
    tracemalloc.start()
    try:
        count = 0
        for _ in client.export_products():
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 5_000
    assert peak < 1.5 * 1024 * 1024, peak  # 5,000 rows are ~2.4 MB of JSON, ~12 MB as dicts; streaming peaks ~0.7 MB


def test_export_filters_by_blueprint(client, control, sandbox_account):
    control.seed_products(sandbox_account.user_id, 200, seed=3)
    rows = control.products(sandbox_account.user_id)
    bp = rows[0]["blueprint_id"]
    got = list(client.export_products(blueprint_id=bp))
    assert got and {p.id for p in got} == {r["id"] for r in rows if r["blueprint_id"] == bp}


def test_export_sends_nothing_until_iterated_and_stopping_early_is_ok(client, control, sandbox_account, guard):
    control.seed_products(sandbox_account.user_id, 5_000, seed=2)
    stream = client.export_products()
    assert control.request_log(sandbox_account.user_id) == []
    first = next(stream)
    assert isinstance(first, Product)
    stream.close()
    assert guard.outcomes == [Outcome.OK]
    client.info()  # the pooled connection is still usable afterwards


def test_empty_export(client):
    assert list(client.export_products()) == []


def test_slow_export_past_the_export_timeout_is_a_timeout(sandbox_settings, sandbox_account, control, settings):
    settings.CARDTRADER_EXPORT_TIMEOUT = 0.5
    control.seed_products(sandbox_account.user_id, 3_000, seed=4)
    control.set_faults(export_latency_per_1000=1.0, user_id=sandbox_account.user_id)
    guard = RecordingGuard()
    from syncops.cardtrader import client_for_token

    try:
        with client_for_token(sandbox_account.token, guard=guard) as c, pytest.raises(Timeout) as err:
            list(c.export_products())
    finally:
        control.clear_faults()
    assert not err.value.outcome_unknown  # a GET
    assert guard.outcomes == [Outcome.TIMEOUT]
