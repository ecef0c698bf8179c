"""The export's fast renderer: byte-for-byte the JSON of ``export_row``, and never stale.

Each product keeps its rendered row with a stamp of what it was rendered from; these tests change
products through the sandbox's own write paths (edit, increment, sale, cancellation) after an
export has filled the cache, and check the next export shows the change.
"""
from __future__ import annotations

import json

from cardtrader_sandbox import inventory
from cardtrader_sandbox.state import World


def _reference(acct, products) -> list[str]:
    return [json.dumps(inventory.export_row(acct, p), separators=(",", ":")) for p in products]


def test_rendered_rows_equal_json_dumps_of_export_row_and_follow_every_change():
    world = World()
    acct = world.create_account(name="Render", currency="USD")
    inventory.seed(world, acct, 2_000, seed_value=3)
    products = list(acct.products.values())
    assert [inventory.export_row_json(acct, p) for p in products] == _reference(acct, products)

    first, second, third = products[:3]
    inventory.update(acct, first.id, {"price": 12.34, "quantity": 9, "description": 'odd "text" 100% é\n',
                                      "properties": {"signed": True}})
    inventory.increment(acct, second.id, {"delta_quantity": 5})
    third.user_data_field = "changed on the website"
    third.graded = True
    assert [inventory.export_row_json(acct, p) for p in products] == _reference(acct, products)
    row = json.loads(inventory.export_row_json(acct, first))
    assert row["price_cents"] == 1234 and row["quantity"] == 9 and row["properties_hash"]["signed"] is True
    assert row["description"] == 'odd "text" 100% é\n'


def test_export_over_http_shows_a_sale_and_its_cancellation_after_a_cached_export(api, control, sandbox_account):
    uid = sandbox_account.user_id
    control.seed_products(uid, 5_000, seed=4)
    before = {r["id"]: r for r in api.get("/products/export").json()}  # fills the render cache
    target = next(r for r in before.values() if r["quantity"] >= 2)
    order = control.sell(uid, [{"product_id": target["id"], "quantity": 1}])
    after = {r["id"]: r for r in api.get("/products/export").json()}
    assert after[target["id"]]["quantity"] == target["quantity"] - 1
    assert after[target["id"]]["bundled_quantity"] == target["quantity"] - 1
    assert {k: v for k, v in after.items() if k != target["id"]} == {
        k: v for k, v in before.items() if k != target["id"]}
    control.transition_order(uid, order["id"], "canceled")
    assert {r["id"]: r for r in api.get("/products/export").json()} == before
