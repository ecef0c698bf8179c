"""A seller's first import COPYs chunks straight into the stock table (``ChunkWriter(first_import=True)``).

The unique (seller, product_id) key, not the flag, is what keeps rows single: a chunk that meets a
row already there is rolled back to its savepoint and upserted, and so is every later chunk. Rows
are built here (stage-row shape) so each case controls exactly which rows clash.
"""
from __future__ import annotations

import uuid

import pytest
from django.db import DataError, IntegrityError

from inventory.models import InventoryItem, ItemSyncState, User
from syncops.services.stock_stage import ChunkWriter, StageTables

pytestmark = pytest.mark.django_db


def _row(pid: int, *, qty: int = 2, name: str = "Card") -> list:
    return [pid, 1000 + pid % 7, None, "", f"{name} {pid}", 1, 1, 10, qty, 150, "EUR", '{"condition":"NM"}',
            "", "", False]


def _seller() -> User:
    return User.objects.create(username=f"first-{uuid.uuid4().hex[:8]}")


def _write(seller: User, chunks: list[list[list]], *, writers: int = 1, first: bool = True) -> ChunkWriter:
    with StageTables(keep_rows=False) as stage, \
            ChunkWriter(stage, seller.pk, writers=writers, first_import=first) as writer:
        for rows in chunks:
            writer.write(rows)
        writer.finish()
    return writer


def _items(seller: User) -> dict[int, tuple]:
    return {pid: (qty, state, version, name) for pid, qty, state, version, name in
            InventoryItem.objects.filter(seller=seller).values_list("product_id", "quantity", "sync_state", "version",
                                                                    "name")}


def test_a_first_import_copies_every_chunk_with_the_upserts_values():
    seller = _seller()
    writer = _write(seller, [[_row(i) for i in range(1, 51)], [_row(i) for i in range(51, 101)]])

    assert (writer.copied, writer.counts.inserted, writer.counts.updated, writer.done) == (100, 100, 0, 100)
    items = InventoryItem.objects.filter(seller=seller)
    assert items.count() == 100
    one = items.get(product_id=7)
    assert (one.quantity, one.price_cents, one.currency, one.properties, one.name) == (
        2, 150, "EUR", {"condition": "NM"}, "Card 7")
    assert (one.sync_state, one.version, one.print_id, one.print_table) == (ItemSyncState.IN_SYNC, 1, None, "")
    assert one.last_synced_at == one.created_at == one.updated_at is not None

    # The same rows again (not a first import): nothing changes, versions stay.
    again = _write(seller, [[_row(i) for i in range(1, 101)]], first=False)
    assert (again.copied, again.counts.inserted, again.counts.updated) == (0, 0, 0)
    assert set(items.values_list("version", flat=True)) == {1}


def test_a_row_already_there_sends_that_chunk_and_the_rest_through_the_upsert():
    seller = _seller()
    # Created meanwhile by something else: one in sync (CardTrader's values win), one with a local
    # edit on its way to CardTrader (an import never overwrites it).
    InventoryItem.objects.create(seller=seller, product_id=60, blueprint_id=1, quantity=9, price_cents=1)
    InventoryItem.objects.create(seller=seller, product_id=70, blueprint_id=1, quantity=5, price_cents=1,
                                 sync_state=ItemSyncState.PENDING_PUSH)
    chunks = [[_row(i) for i in range(1, 51)], [_row(i) for i in range(51, 101)], [_row(i) for i in range(101, 151)]]

    writer = _write(seller, chunks)

    assert writer.copied == 50  # the first chunk only; the clash turned the flag off
    assert not writer.first_import
    assert (writer.counts.inserted, writer.counts.updated, writer.done) == (148, 1, 150)
    items = _items(seller)
    assert len(items) == 150 and InventoryItem.objects.filter(seller=seller).count() == 150
    assert items[60][:3] == (2, ItemSyncState.IN_SYNC, 2)
    assert items[70][:3] == (5, ItemSyncState.PENDING_PUSH, 1)


def test_a_product_id_repeated_in_a_later_chunk_is_still_one_row():
    seller = _seller()
    writer = _write(seller, [[_row(i) for i in range(1, 11)], [_row(5, qty=7), _row(11)]])

    assert writer.copied == 10
    items = _items(seller)
    assert len(items) == 11 and items[5][:2] == (7, ItemSyncState.IN_SYNC)
    assert (writer.counts.inserted, writer.counts.updated) == (11, 1)


def test_a_row_the_table_refuses_fails_loudly_and_writes_nothing_of_its_chunk():
    seller = _seller()
    bad = [_row(i) for i in range(1, 11)]
    bad[4][8] = -1  # quantity below zero: a check constraint, not a clash
    with pytest.raises(IntegrityError):
        _write(seller, [[_row(i) for i in range(100, 110)], bad])
    assert sorted(_items(seller)) == list(range(100, 110))


@pytest.mark.django_db(transaction=True)
def test_parallel_writers_fall_back_on_a_clash_without_duplicates():
    seller = _seller()
    InventoryItem.objects.create(seller=seller, product_id=1_205, blueprint_id=1, quantity=9, price_cents=1)
    chunks = [[_row(i) for i in range(c * 500, c * 500 + 500)] for c in range(6)]

    writer = _write(seller, chunks, writers=2)

    items = _items(seller)
    assert len(items) == 3_000 == InventoryItem.objects.filter(seller=seller).count()
    assert items[1_205][:2] == (2, ItemSyncState.IN_SYNC)
    assert (writer.counts.inserted, writer.counts.updated, writer.done) == (2_999, 1, 3_000)
    assert writer.copied < 3_000 and writer.copied % 500 == 0


@pytest.mark.parametrize("first", [True, False], ids=["first-import-copy", "staged-upsert"])
@pytest.mark.parametrize(("column", "value"), [(8, 2**32 + 5), (9, -2**31 - 1), (2, 2**63)],
                         ids=["quantity-int4", "price-int4", "print-id-int8"])
def test_an_integer_its_column_cannot_hold_is_refused_not_truncated(first, column, value):
    # Binary COPY: psycopg's int4 dumper would send the low 32 bits (2**32 + 5 stored as 5).
    seller = _seller()
    rows = [_row(i) for i in range(1, 11)]
    rows[3][column] = value
    with pytest.raises(DataError, match="out of range"):
        _write(seller, [[_row(i) for i in range(100, 105)], rows], first=first)
    assert sorted(_items(seller)) == list(range(100, 105))


@pytest.mark.parametrize("first", [True, False], ids=["first-import-copy", "staged-upsert"])
def test_values_arrive_as_sent_through_binary_copy(first):
    seller = _seller()
    row = _row(1, name="Ænima ☃")
    row[2], row[3], row[5], row[6] = 2**40, "cards_prints", None, None  # print id beyond int4, NULL ids
    row[11] = '{"condition":"NM","nested":{"é":[1,2.5,null,true]}}'
    row[12], row[13], row[14] = "tab\there\nnewline \\ backslash", "", True
    _write(seller, [[row]], first=first)
    item = InventoryItem.objects.get(seller=seller)
    assert (item.print_id, item.print_table, item.game_id, item.category_id, item.name) == (
        2**40, "cards_prints", None, None, "Ænima ☃ 1")
    assert item.properties == {"condition": "NM", "nested": {"é": [1, 2.5, None, True]}}
    assert (item.description, item.graded) == ("tab\there\nnewline \\ backslash", True)


@pytest.mark.django_db(transaction=True)
def test_a_parallel_first_import_registers_every_name_for_the_staff_search():
    """The writers register a chunk's (blueprint, name) pairs before its transaction (and the
    stock table's trigger again inside it): every pair is there, once, after the run."""
    from inventory.models import BlueprintName

    seller = _seller()
    chunks = [[_row(i, name=f"Card {i % 13}") for i in range(n, n + 40)] for n in range(1, 201, 40)]
    writer = _write(seller, chunks, writers=2)
    assert writer.copied == 200 and writer.writers == 2
    expected = {(r[1], r[4]) for rows in chunks for r in rows}
    assert set(BlueprintName.objects.values_list("blueprint_id", "name")) == expected
    assert writer._names == expected  # each pair sent by one writer, once
