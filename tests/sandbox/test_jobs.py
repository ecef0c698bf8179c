"""Async bulk jobs: pending → running → completed, per-item results that match the input."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.usefixtures("restore_config")


def _poll(api, job, *, until=("completed", "unprocessable"), seen=None):
    seen = list(seen or [])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        resp = api.get(f"/jobs/{job}")
        if resp.status_code == 429:  # 1 req/s per token
            time.sleep(0.3)
            continue
        body = resp.json()
        if not seen or seen[-1] != body["state"]:
            seen.append(body["state"])
        if body["state"] in until:
            return body, seen
        time.sleep(0.3)
    raise AssertionError(f"job never finished: {seen}")


def _export_ids(api):
    return {row["id"]: row for row in api.get("/products/export").json()}


def test_bulk_create_results_match_input_and_stats(api, control):
    control.set_config(job_pending_seconds=0.8, job_running_seconds=1.2)
    items = [
        {"blueprint_id": 6, "price": 1.0, "quantity": 2, "properties": {"condition": "Played"}},
        {"blueprint_id": 6, "price": 2.0, "quantity": 1, "properties": {"mtg_rarity": "Common"}},
        {"blueprint_id": 999_999_999, "price": 1.0, "quantity": 1},
        {"price": 1.0, "quantity": 1},
        {"blueprint_id": 6, "price": 1.0, "quantity": 1, "properties": {"condition": "Plaied"},
         "error_mode": "strict"},
    ]
    resp = api.post("/products/bulk_create", json={"products": items})
    assert resp.status_code == 200
    assert set(resp.json()) == {"job"}
    job = resp.json()["job"]
    first = api.get(f"/jobs/{job}").json()
    assert first["state"] == "pending" and first["uuid"] == job and first["spawned_children"] == 5
    assert _export_ids(api) == {}  # nothing applied before the job completes
    body, seen = _poll(api, job, seen=[first["state"]])
    assert seen[0] == "pending" and "running" in seen and seen[-1] == "completed"
    results = body["results"]
    assert [r["job_index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["result"] for r in results] == ["ok", "warning", "error", "error", "error"]
    assert results[1]["warnings"] == {"properties": {"mtg_rarity": ["Read only property mtg_rarity has been ignored"]}}
    assert results[2]["errors"] == {"blueprint_id": ["Blueprint not found"]}
    assert results[3]["errors"] == {"blueprint_id": ["Blueprint cant be blank"]}
    assert "condition" in results[4]["errors"]["properties"]
    assert body["stats"] == {"ok": 1, "warning": 1, "error": 3}
    exported = _export_ids(api)
    assert set(exported) == {results[0]["product_id"], results[1]["product_id"]}
    assert exported[results[0]["product_id"]]["quantity"] == 2


def test_bulk_update_and_destroy_report_per_item(api, control):
    control.set_config(job_pending_seconds=0, job_running_seconds=0)
    a = api.post("/products", json={"blueprint_id": 6, "price": 1, "quantity": 1,
                                    "properties": {"mtg_foil": True}}).json()["resource"]["id"]
    b = api.post("/products", json={"blueprint_id": 7, "price": 1, "quantity": 1}).json()["resource"]["id"]
    job = api.post("/products/bulk_update", json={"products": [
        {"id": a, "quantity": 7, "properties": {"mtg_foil": False}},
        {"id": 1, "quantity": 1},
        {"quantity": 1},
    ]}).json()["job"]
    body, _ = _poll(api, job)
    assert [r["result"] for r in body["results"]] == ["ok", "error", "error"]
    assert body["results"][0]["product_id"] == a
    row = _export_ids(api)[a]
    assert row["quantity"] == 7 and row["properties_hash"]["mtg_foil"] is False
    time.sleep(1.0)  # jobs polling is 1 req/s
    job = api.post("/products/bulk_destroy", json={"products": [{"id": b}, {"id": b}]}).json()["job"]
    body, _ = _poll(api, job)
    assert [r["result"] for r in body["results"]] == ["ok", "error"]
    assert body["stats"] == {"ok": 1, "warning": 0, "error": 1}
    assert set(_export_ids(api)) == {a}


def test_job_effects_appear_when_it_completes_even_unpolled(api, control):
    control.set_config(job_pending_seconds=0.2, job_running_seconds=0.2)
    api.post("/products/bulk_create", json={"products": [{"blueprint_id": 6, "price": 1, "quantity": 1}]})
    time.sleep(0.5)
    assert len(_export_ids(api)) == 1


def test_bulk_limits_and_bad_payloads(api, control):
    control.set_config(bulk_max_items=2)
    too_many = api.post("/products/bulk_create", json={"products": [{"blueprint_id": 6}] * 3})
    assert too_many.status_code == 422 and too_many.json()["error_code"] == "validation_error"
    missing = api.post("/products/bulk_update", json={})
    assert missing.status_code == 422 and missing.json()["error_code"] == "missing_parameter"
    assert api.get("/jobs/00000000-0000-0000-0000-000000000000").status_code == 404


def test_unprocessable_job_changes_nothing(api, control, sandbox_account):
    control.set_config(job_pending_seconds=0, job_running_seconds=0)
    control.set_faults(job_unprocessable_rate=1.0, user_id=sandbox_account.user_id)
    job = api.post("/products/bulk_create", json={"products": [{"blueprint_id": 6, "price": 1, "quantity": 1}]})
    body, _ = _poll(api, job.json()["job"])
    assert body["state"] == "unprocessable"
    assert _export_ids(api) == {}
