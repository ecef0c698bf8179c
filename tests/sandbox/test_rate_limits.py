"""CardTrader's request limits, per token, over real HTTP."""
from __future__ import annotations

import time

import pytest

GLOBAL_429 = {"error": "Too many requests: max 200 requests per 10 seconds"}
JOBS_429 = {"error": "Too many requests: max 1 request per second"}


def test_201st_request_in_10s_gets_cardtraders_429_and_another_token_is_unaffected(
        api, control, sandbox_account, make_api):
    other = control.create_account(name="Other")
    start = time.time()
    statuses = [api.get("/info").status_code for _ in range(200)]
    assert statuses == [200] * 200
    over = api.get("/info")
    assert time.time() - start < 10, "the test machine was too slow to stay inside one window"
    assert over.status_code == 429
    assert over.json() == GLOBAL_429
    assert "Retry-After" not in over.headers  # none documented, none by default
    assert make_api(other.token).get("/info").status_code == 200
    # the request log counts exactly what was sent, with statuses
    log = control.request_log(sandbox_account.user_id, since=start)
    assert [e["status"] for e in log] == [200] * 200 + [429]
    assert {e["path"] for e in log} == {"/api/v2/info"}
    assert len(control.request_log(other.user_id)) == 1


def test_jobs_are_limited_to_one_request_per_second_with_their_own_body(api):
    job = api.post("/products/bulk_destroy", json={"products": [{"id": 1}]}).json()["job"]
    assert api.get(f"/jobs/{job}").status_code == 200
    second = api.get(f"/jobs/{job}")
    assert second.status_code == 429
    assert second.json() == JOBS_429
    assert api.get("/info").status_code == 200  # only the jobs endpoint is throttled
    time.sleep(1.05)
    assert api.get(f"/jobs/{job}").status_code == 200


@pytest.mark.usefixtures("restore_config")
def test_retry_after_header_only_when_switched_on(api, control):
    control.set_config(retry_after_header=True, global_limit=2, global_window_seconds=5)
    api.get("/info")
    api.get("/info")
    rejected = api.get("/info")
    assert rejected.status_code == 429
    assert 1 <= int(rejected.headers["Retry-After"]) <= 5


@pytest.mark.usefixtures("restore_config")
@pytest.mark.parametrize(("algorithm", "expected"), [("sliding", [200, 429]), ("fixed", [200, 200])])
def test_window_algorithm_is_switchable(api, control, algorithm, expected):
    control.set_config(rate_limit_algorithm=algorithm, global_limit=2, global_window_seconds=1.0)
    assert api.get("/info").status_code == 200  # t=0 opens the window
    time.sleep(0.6)
    assert api.get("/info").status_code == 200  # t=0.6
    time.sleep(0.5)
    # t=1.1: the fixed window restarted; the sliding one still holds the call at t=0.6
    assert [api.get("/info").status_code for _ in range(2)] == expected


@pytest.mark.usefixtures("restore_config")
@pytest.mark.parametrize(("count_rejected", "after_window"), [(False, 200), (True, 429)])
def test_whether_rejected_calls_count_is_switchable(api, control, count_rejected, after_window):
    control.set_config(count_rejected=count_rejected, global_limit=2, global_window_seconds=1.0)
    assert [api.get("/info").status_code for _ in range(2)] == [200, 200]
    time.sleep(0.5)
    assert [api.get("/info").status_code for _ in range(3)] == [429, 429, 429]
    time.sleep(0.6)  # the two accepted calls have left the window; the rejected ones haven't
    assert api.get("/info").status_code == after_window


def test_marketplace_is_limited_to_ten_per_second(api):
    statuses = [api.get("/marketplace/products", params={"blueprint_id": 1}).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    assert api.get("/marketplace/products", params={"blueprint_id": 1}).json() == {
        "error": "Too many requests: max 10 requests per second"}
