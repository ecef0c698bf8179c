"""``__any``: the same rows as ``__in``, sent as one array parameter on PostgreSQL."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import InventoryItem
from syncops.models import SyncOperation

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(seller):
    item = InventoryItem.objects.create(seller=seller, product_id=1, blueprint_id=6, quantity=1, price_cents=100)
    return [SyncOperation.objects.create(operation_key=f"any-{n}", seller=seller, kind="adjust",
                                         item=item if n % 2 else None) for n in range(6)]


@pytest.mark.parametrize("pick", [slice(0, 3), slice(0, 0), slice(2, 6)])
def test_any_matches_in(ops, pick):
    ids = [op.pk for op in ops[pick]] + [None]
    assert sorted(SyncOperation.objects.filter(pk__any=ids).values_list("pk", flat=True)) == \
        sorted(SyncOperation.objects.filter(pk__in=ids).values_list("pk", flat=True))


def test_any_on_a_foreign_key_and_in_an_update(ops):
    item_id = ops[1].item_id
    assert SyncOperation.objects.filter(item_id__any=[item_id, None]).count() == 3
    with CaptureQueriesContext(connection) as queries:
        changed = SyncOperation.objects.filter(pk__any=[op.pk for op in ops]).update(attempts=2)
    assert changed == 6
    assert "= ANY(" in queries[-1]["sql"] and " IN (" not in queries[-1]["sql"]


def test_a_subquery_stays_in(ops):
    sub = SyncOperation.objects.filter(item__isnull=False).values("pk")
    qs = SyncOperation.objects.filter(pk__any=sub)
    assert " IN (SELECT" in str(qs.query) and qs.count() == 3


def test_plain_ints_and_values_needing_preparation_match_in(ops):
    """Plain ints skip Django's per-value preparation; strings, duplicates and tuples still match ``__in``."""
    ids = [op.pk for op in ops]
    for values in ([ids[0], ids[0], ids[3]], (ids[1], ids[2]), [str(ids[4]), ids[5]], [str(i) for i in ids]):
        assert sorted(SyncOperation.objects.filter(pk__any=values).values_list("pk", flat=True)) == \
            sorted(SyncOperation.objects.filter(pk__in=values).values_list("pk", flat=True))
    assert SyncOperation.objects.filter(item_id__any=[ops[1].item_id] * 3).count() == 3
