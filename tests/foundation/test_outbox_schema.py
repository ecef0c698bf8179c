"""The outbox table's indexes: every local edit inserts a row and every state change rewrites its
entries, so the set is deliberate (migration 0006, docs/DECISIONS.md)."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from syncops.models import SyncOperation

pytestmark = pytest.mark.django_db


def test_the_outbox_keeps_only_the_indexes_its_readers_use():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [SyncOperation._meta.db_table])
        columns = sorted(row[0].split(" USING btree ", 1)[1] for row in cursor.fetchall())
    # No LIKE-only twin (varchar_pattern_ops) of the operation key or the job id: the admin searches
    # exact values; no single-column seller index: two composites lead with the seller.
    assert not [c for c in columns if "pattern_ops" in c]
    assert "(seller_id)" not in columns
    assert columns == sorted([
        "(id)", "(operation_key)", "(cardtrader_job_uuid)", "(created_at)", "(item_id)", "(product_id)",
        "(seller_id, created_at DESC)", "(state, created_at DESC)",
        "(seller_id, state) WHERE ((state)::text = ANY ((ARRAY['pending'::character varying, "
        "'running'::character varying])::text[]))",
        "(state, next_attempt_at) WHERE ((state)::text = ANY ((ARRAY['pending'::character varying, "
        "'running'::character varying])::text[]))",
    ])


def test_the_operation_key_is_still_unique_in_the_database(seller):
    """Enqueueing is idempotent through this constraint (the edit's ``operation_key``)."""
    SyncOperation.objects.create(operation_key="update:1:v1", seller=seller, kind="update")
    with pytest.raises(IntegrityError, match="op_operation_key_unique"), transaction.atomic():
        SyncOperation.objects.create(operation_key="update:1:v1", seller=seller, kind="update")


def test_the_admin_finds_an_operation_by_exact_key_and_job_id_on_their_indexes(seller):
    """What the dropped LIKE twins were never needed for: exact lookups use the remaining indexes."""
    op = SyncOperation.objects.create(operation_key="update:2:v1", seller=seller, kind="update",
                                      cardtrader_job_uuid="job-1")
    for lookup in ({"operation_key": "update:2:v1"}, {"cardtrader_job_uuid": "job-1"}):
        qs = SyncOperation.objects.filter(**lookup)
        assert list(qs) == [op]
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            plan = qs.explain()
        assert "Index" in plan, plan
