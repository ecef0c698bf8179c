"""Fault switches (global or per account) and the request log."""
from __future__ import annotations

import time

import pytest
import requests

pytestmark = pytest.mark.usefixtures("restore_config")


def test_5xx_share_scoped_to_one_account_then_cleared(api, control, sandbox_account, make_api):
    bystander = make_api(control.create_account().token)
    control.set_faults(error_5xx_rate=1.0, user_id=sandbox_account.user_id)
    failed = api.get("/info")
    assert failed.status_code == 500
    assert failed.json()["error_code"] == "internal_server_error" and failed.json()["request_id"]
    assert bystander.get("/info").status_code == 200
    control.clear_faults(sandbox_account.user_id)
    assert api.get("/info").status_code == 200


def test_a_share_of_5xx_is_roughly_that_share(api, control, sandbox_account):
    control.set_faults(error_5xx_rate=0.5, user_id=sandbox_account.user_id)
    statuses = [api.get("/info").status_code for _ in range(150)]
    assert set(statuses) == {200, 500}
    assert 40 <= statuses.count(500) <= 110


def test_html_error_pages_globally(api, control):
    control.set_faults(html_error_rate=1.0)
    resp = api.get("/products/export")
    assert resp.status_code == 502
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.text.startswith("<!DOCTYPE html>")
    control.clear_faults()
    assert api.get("/products/export").status_code == 200


def test_429_burst_answers_the_next_n_requests(api, control, sandbox_account):
    control.set_faults(rate_limit_burst=3, user_id=sandbox_account.user_id)
    resps = [api.get("/info") for _ in range(4)]
    assert [r.status_code for r in resps] == [429, 429, 429, 200]
    assert resps[0].json() == {"error": "Too many requests: max 200 requests per 10 seconds"}


def test_timeout_hangs_past_the_client_timeout(api, control, sandbox_account):
    control.set_faults(timeout_rate=1.0, timeout_seconds=3, user_id=sandbox_account.user_id)
    with pytest.raises(requests.Timeout):
        api.get("/info", timeout=0.5)
    control.clear_faults()  # also frees the hung request
    assert api.get("/info", timeout=5).status_code == 200


def test_slow_export_is_proportional_to_size(api, control, sandbox_account):
    control.seed_products(sandbox_account.user_id, 2_000, seed=1)
    control.set_faults(export_latency_per_1000=1.0, user_id=sandbox_account.user_id)
    started = time.monotonic()
    rows = api.get("/products/export").json()
    assert time.monotonic() - started >= 2.0
    assert len(rows) == 2_000
    control.clear_faults(sandbox_account.user_id)
    started = time.monotonic()
    api.get("/products/export").json()
    assert time.monotonic() - started < 1.5


def test_unknown_fault_or_config_is_rejected(control):
    from cardtrader_sandbox.control import SandboxControlError

    with pytest.raises(SandboxControlError) as err:
        control.set_faults(error_rate=1.0)
    assert err.value.status == 422
    with pytest.raises(SandboxControlError):
        control.set_config(rate_limit_algorithm="token_bucket")


def test_request_log_filters_by_account_and_time(api, control, sandbox_account, make_api):
    other = make_api(control.create_account().token)
    api.get("/info")
    api.post("/products", json={"blueprint_id": 6, "price": 1, "quantity": 1})
    other.get("/games")
    mark = time.time()
    time.sleep(0.01)
    api.put("/products/1", json={"quantity": 1})
    mine = control.request_log(sandbox_account.user_id)
    assert [(e["method"], e["path"], e["status"]) for e in mine] == [
        ("GET", "/api/v2/info", 200), ("POST", "/api/v2/products", 200), ("PUT", "/api/v2/products/1", 404)]
    assert all(set(e) >= {"user_id", "method", "path", "status", "time"} for e in mine)
    assert [e["path"] for e in control.request_log(sandbox_account.user_id, since=mark)] == ["/api/v2/products/1"]
    assert len(control.request_log(since=mark)) == 1
    control.products(sandbox_account.user_id)  # control calls are not CardTrader calls
    assert len(control.request_log(sandbox_account.user_id)) == 3
