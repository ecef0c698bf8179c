"""Staff search across a million items must use indexes, not scan (issue 9's admin goal).

Names are searched through ``BlueprintName`` (one row per (blueprint, name) pair, trigram-indexed),
which PostgreSQL's triggers on the stock table keep complete (migration inventory/0005); the stock
table itself has no name index since issue 6's fifth pass (docs/IMPORT.md, "Indexes").
"""
from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection, connections, transaction

from inventory.models import BlueprintName, InventoryItem, User
from inventory.selectors.names import items_named, search_terms
from syncops.services.stock_stage import StageTables, copy_new_items, register_names, upsert_from_stage


def _pairs() -> set[tuple[int, str]]:
    return set(BlueprintName.objects.values_list("blueprint_id", "name"))


def _row(pid: int, bp: int, name: str) -> list:
    return [pid, bp, None, "", name, 1, 1, 10, 1, 100, "EUR", "{}", "", "", False]


@pytest.mark.django_db
def test_every_writer_of_the_stock_table_registers_its_names(seller):
    # The ORM (one INSERT of many rows), with an empty name that is never registered.
    InventoryItem.objects.bulk_create([
        InventoryItem(seller=seller, product_id=1, blueprint_id=10, name="Black Lotus"),
        InventoryItem(seller=seller, product_id=2, blueprint_id=10, name="Black Lotus"),
        InventoryItem(seller=seller, product_id=3, blueprint_id=11, name=""),
    ])
    assert _pairs() == {(10, "Black Lotus")}
    now = datetime.now(UTC)
    # The first import's COPY straight into the stock table.
    copy_new_items([_row(4, 12, "Mox Pearl"), _row(5, 13, "Time Walk")], seller.pk, now)
    # The staged upsert: an insert, and an update that renames (CardTrader renamed the card).
    with StageTables(keep_rows=False) as stage:
        stage.load([_row(6, 14, "Ancestral Recall"), _row(4, 12, "Mox Pearl (Alpha)")])
        counts = upsert_from_stage(stage, seller.pk, now)
    assert (counts.inserted, counts.updated) == (1, 1)
    # The ORM's update of a blueprint, and an update that touches neither column (no new pair).
    InventoryItem.objects.filter(product_id=5).update(blueprint_id=15)
    InventoryItem.objects.filter(product_id=1).update(quantity=9)
    assert _pairs() == {(10, "Black Lotus"), (12, "Mox Pearl"), (13, "Time Walk"), (14, "Ancestral Recall"),
                        (12, "Mox Pearl (Alpha)"), (15, "Time Walk")}


@pytest.mark.django_db
def test_register_names_sends_only_pairs_it_has_not_seen(seller):
    known: set[tuple[int, str]] = set()
    rows = [_row(1, 10, "Island"), _row(2, 10, "Island"), _row(3, 11, "Swamp"), _row(4, 12, "")]
    assert register_names(rows, known) == 2
    assert register_names(rows, known) == 0  # nothing new: no statement at all
    assert register_names([_row(5, 11, "Swamp"), _row(6, 13, "Forest")], known) == 1
    assert _pairs() == known == {(10, "Island"), (11, "Swamp"), (13, "Forest")}


@pytest.mark.django_db
def test_name_search_is_exactly_the_items_name_match(seller):
    other = User.objects.create(username=f"other-{uuid.uuid4().hex[:8]}")
    a = InventoryItem.objects.create(seller=seller, product_id=1, blueprint_id=10, name="Lightning Bolt")
    b = InventoryItem.objects.create(seller=other, product_id=2, blueprint_id=10, name="Lightning Bolt")
    # Same blueprint, another name (a stale or local name): the blueprint matches, the item must not.
    InventoryItem.objects.create(seller=seller, product_id=3, blueprint_id=10, name="Éclair")
    c = InventoryItem.objects.create(seller=seller, product_id=4, blueprint_id=11, name="Chain Lightning")
    InventoryItem.objects.create(seller=seller, product_id=5, blueprint_id=12, name="Lightning Helix")
    everything = InventoryItem.objects.all()

    def found(term: str) -> set[int]:
        return set(items_named(everything, term).values_list("pk", flat=True))

    assert found("lightning bolt") == {a.pk, b.pk}
    assert found("BOLT") == {a.pk, b.pk}
    assert found("chain lightning") == {c.pk}
    assert found('"chain lightning"') == {c.pk}
    assert found('"lightning chain"') == set()  # a quoted phrase is one word
    assert found("lightning") == {a.pk, b.pk, c.pk, InventoryItem.objects.get(product_id=5).pk}
    assert found("nothing like it") == set()
    assert found(str(seller.pk)[:4] + "zz") == set()
    # What the plain search gives on the same rows (Django's admin semantics), word for word.
    for term in ("lightning bolt", "helix", "clair", "lightning chain"):
        plain = everything
        for word in search_terms(term):
            plain = plain.filter(name__icontains=word)
        assert found(term) == set(plain.values_list("pk", flat=True)), term


@pytest.mark.django_db(transaction=True)
def test_name_search_uses_the_name_tables_trigram_index_and_the_blueprint_index(seller):
    InventoryItem.objects.bulk_create(
        InventoryItem(seller=seller, product_id=i, blueprint_id=i % 1000,
                      name="Black Lotus" if i % 1000 == 7 else f"Card {i % 1000}") for i in range(3000)
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE inventory_inventoryitem")
        # A GIN index's statistics (and its pending list's flush) come from VACUUM, which this
        # server's autovacuum (off) never runs: never vacuumed, the planner prices it above a scan.
        cur.execute("VACUUM ANALYZE inventory_blueprintname")
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the planner show what it can use
        names = BlueprintName.objects.filter(name__icontains="lotus").values("blueprint_id")
        sql, params = names.query.sql_with_params()
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
        assert "blueprintname_trgm_idx" in plan, plan
        items = items_named(InventoryItem.objects.all(), "lotus")
        sql, params = items.query.sql_with_params()
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "item_bp_seller_product_idx" in plan, plan
    assert items.count() == 3


@pytest.mark.django_db
def test_the_planner_knows_how_many_items_a_name_matches(seller):
    """Without statistics on UPPER(name) (the trigram index used to provide them) the planner took
    a LIKE on the items' names for ~0.5 % of rows a word, and at a million items joined a three-word
    search's "1 row" by nested loops: 26 s. The extended statistics of migration 0005 fix that."""
    InventoryItem.objects.bulk_create(
        InventoryItem(seller=seller, product_id=i, blueprint_id=i % 40,
                      name=("Lightning " if i % 2 else "Island ") + f"Card {i % 40}") for i in range(4000)
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE inventory_inventoryitem")
        sql, params = InventoryItem.objects.filter(name__icontains="lightning").filter(
            name__icontains="card").query.sql_with_params()
        cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        estimate = cur.fetchone()[0][0]["Plan"]["Plan Rows"]
    assert 1000 <= estimate <= 4000, estimate  # 2,000 match


@pytest.mark.django_db(transaction=True)
def test_concurrent_inserts_of_the_same_new_names_both_commit():
    """A transaction adding pairs that another has added and not yet committed waits for it, then
    commits: no unique violation, no duplicate pair (the trigger's ON CONFLICT DO NOTHING)."""
    sellers = [User.objects.create(username=f"conc-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    names = [(100 + i, f"Card {i}") for i in range(200)]
    first_in = threading.Event()
    errors: list[BaseException] = []

    def insert(n: int) -> None:
        try:
            order = names if n == 0 else names[::-1]
            with transaction.atomic():
                InventoryItem.objects.bulk_create(
                    InventoryItem(seller=sellers[n], product_id=i, blueprint_id=bp, name=name)
                    for i, (bp, name) in enumerate(order))
                if n == 0:
                    first_in.set()
                    threading.Event().wait(0.5)  # hold the pairs, uncommitted, while the other inserts
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    try:
        a = threading.Thread(target=insert, args=(0,))
        a.start()
        assert first_in.wait(10)
        b = threading.Thread(target=insert, args=(1,))
        b.start()
        a.join(20)
        b.join(20)
        assert not errors, errors
        assert InventoryItem.objects.count() == 400
        assert _pairs() == set(names)
    finally:
        InventoryItem.objects.filter(seller__in=sellers).delete()
        BlueprintName.objects.all().delete()
        User.objects.filter(pk__in=[s.pk for s in sellers]).delete()


@pytest.mark.django_db
def test_product_and_blueprint_lookups_without_a_seller_are_indexed():
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'inventory_inventoryitem'")
        names = {row[0] for row in cur.fetchall()}
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'item_bp_seller_product_idx'")
        bp_index = cur.fetchone()[0]
    assert {"item_product_idx", "item_bp_seller_product_idx", "item_unique_seller_product"} <= names
    assert "(blueprint_id, seller_id, product_id)" in bp_index  # blueprint first: serves it alone
    assert "item_name_trgm_idx" not in names  # names are searched through BlueprintName
