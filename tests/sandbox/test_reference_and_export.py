"""Reference data from the real fixtures, and the whole-inventory export."""
from __future__ import annotations

import json

import pytest


@pytest.mark.usefixtures("restore_config")
def test_games_use_the_array_wrapper_switchable_to_bare(api, control):
    wrapped = api.get("/games").json()
    assert set(wrapped) == {"array"}
    assert wrapped["array"][0] == {"id": 1, "display_name": "Magic: the Gathering", "name": "Magic"}
    control.set_config(games_shape="bare")
    assert api.get("/games").json() == wrapped["array"]


def test_categories_expansions_and_blueprints(api):
    magic = api.get("/categories", params={"game_id": 1}).json()
    assert magic and {c["game_id"] for c in magic} == {1}
    assert len(api.get("/categories").json()) > len(magic)
    expansions = api.get("/expansions").json()
    assert {"id": 1, "game_id": 1, "code": "gnt", "name": "Game Night"} in expansions
    blueprints = api.get("/blueprints/export", params={"expansion_id": 1}).json()
    assert len(blueprints) == 79
    assert all(bp["expansion_id"] == 1 and "editable_properties" in bp for bp in blueprints)
    for params in ({}, {"expansion_id": "abc"}, {"expansion_id": 0}):
        resp = api.get("/blueprints/export", params=params)
        assert resp.status_code == 404 and resp.json()["error_code"] == "not_found"


def test_expansions_export_lists_only_stocked_expansions(api, control, sandbox_account):
    assert api.get("/expansions/export").json() == []
    control.seed_products(sandbox_account.user_id, 3, game="digimon")
    assert [e["id"] for e in api.get("/expansions/export").json()] == [2591]


def test_big_export_is_streamed_whole_and_matches_the_control_view(api, control, sandbox_account):
    control.seed_products(sandbox_account.user_id, 5_000, seed=11)
    resp = api.get("/products/export", stream=True)
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    rows = json.loads(b"".join(resp.iter_content(65536)))
    assert len(rows) == 5_000
    assert rows == control.products(sandbox_account.user_id)
    by_blueprint = api.get("/products/export", params={"blueprint_id": rows[0]["blueprint_id"]}).json()
    assert by_blueprint and {r["blueprint_id"] for r in by_blueprint} == {rows[0]["blueprint_id"]}


def test_seeding_is_deterministic_per_seed(control):
    a = control.create_account()
    b = control.create_account()
    c = control.create_account()
    for acct, seed in ((a, 5), (b, 5), (c, 6)):
        assert control.seed_products(acct.user_id, 300, seed=seed) == 300

    def strip(rows):
        return [(r["blueprint_id"], r["quantity"], r["price_cents"], r["properties_hash"]) for r in rows]

    assert strip(control.products(a.user_id)) == strip(control.products(b.user_id))
    assert strip(control.products(a.user_id)) != strip(control.products(c.user_id))
    keys = {(r[0], json.dumps(r[3], sort_keys=True), r[2]) for r in strip(control.products(a.user_id))}
    assert len(keys) == 300  # no two seeded rows are identical (CardTrader would have merged them)
