"""The inbox table's indexes: each delivery pays for every one of them, so the set is deliberate."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from syncops.models import WebhookEvent
from tests.webhooks.conftest import make_shop

pytestmark = pytest.mark.django_db


def test_the_inbox_keeps_only_the_indexes_its_readers_use():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [WebhookEvent._meta.db_table])
        columns = sorted(row[0].split(" USING btree ", 1)[1] for row in cursor.fetchall())
    # pk; the delivery id (ON CONFLICT's target); the sweeper's; an order's deliveries; the admin's
    # per-seller history. No LIKE-only twin of the delivery id, no single-column seller index.
    assert columns == ["(delivery_id)", "(id)", "(seller_id, object_id)", "(seller_id, received_at DESC)",
                       "(state, received_at)"]


def test_the_delivery_id_is_unique_in_the_database():
    shop = make_shop()
    fields = {"seller": shop.user, "cause": "order.create", "object_id": 1, "payload": {}}
    WebhookEvent.objects.create(delivery_id="dup-1", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookEvent.objects.create(delivery_id="dup-1", **fields)
