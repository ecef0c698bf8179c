"""CSV import: asynchronous, one per game at a time, add_to_stock vs replace_stock, skipped rows."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.usefixtures("restore_config")

CSV = (
    "blueprint_id,quantity,price,condition,foil\n"
    "6,2,1.50,Played,true\n"
    "7,1,0.99,,\n"
    "999999999,1,1.00,,\n"
    "168884,1,1.00,,\n"  # a Digimon blueprint in a Magic import
)


def _import(api, csv_text, mode="add_to_stock", game_id=1):
    return api.post("/product_imports", files={"csv": ("mini.csv", csv_text.encode())},
                    data={"game_id": str(game_id), "replace_stock_or_add_to_stock": mode})


def _wait(api, import_id):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = api.get(f"/product_imports/{import_id}").json()
        if body["sync_ended_at"]:
            return body
        time.sleep(0.1)
    raise AssertionError("import never ended")


def test_add_to_stock_imports_identifiable_rows_and_lists_the_skipped(api, control):
    control.set_config(import_seconds=0.5)
    started = _import(api, CSV)
    assert started.status_code == 200
    assert started.json()["csv_filename"] == "mini.csv" and started.json()["csv_size"] == len(CSV)
    import_id = started.json()["id"]
    busy = _import(api, CSV)  # the same game while one runs
    assert busy.status_code == 422
    assert busy.json() == {"errors": [{"scheduler": "Another synchronization is in progress. Please retry later."}]}
    running = api.get(f"/product_imports/{import_id}").json()
    assert running["sync_ended_at"] is None and api.get("/products/export").json() == []
    done = _wait(api, import_id)
    assert (done["count"], done["imported_count"], done["skipped_count"], done["create_count"]) == (4, 2, 2, 2)
    rows = {r["blueprint_id"]: r for r in api.get("/products/export").json()}
    assert rows[6]["quantity"] == 2 and rows[6]["price_cents"] == 150
    assert rows[6]["properties_hash"]["condition"] == "Played" and rows[6]["properties_hash"]["mtg_foil"] is True
    skipped = api.get(f"/product_imports/{import_id}/skipped")
    assert skipped.headers["Content-Type"].startswith("text/csv")
    assert "999999999" in skipped.text and "168884" in skipped.text and "Played" not in skipped.text


def test_replace_stock_replaces_only_that_games_inventory(api, control, sandbox_account):
    control.set_config(import_seconds=0)
    control.seed_products(sandbox_account.user_id, 5, game="mtg")
    control.seed_products(sandbox_account.user_id, 3, game="digimon")
    done = _wait(api, _import(api, "blueprint_id,quantity,price\n6,4,2.00\n", mode="replace_stock").json()["id"])
    assert done["delete_count"] == 5 and done["create_count"] == 1
    games = sorted((r["game_id"], r["blueprint_id"]) for r in api.get("/products/export").json())
    assert [g for g in games if g[0] == 1] == [(1, 6)]
    assert len([g for g in games if g[0] == 8]) == 3  # the Digimon stock is untouched


def test_import_needs_csv_and_game(api):
    resp = api.post("/product_imports", files={"x": ("a.csv", b"")}, data={"game_id": "1"})
    assert resp.status_code == 422 and resp.json()["error_code"] == "missing_parameter"
