"""Recording a sent job on its operations: the PostgreSQL statement and the portable one agree."""
from __future__ import annotations

import pytest
from django.db import connection

from syncops.models import SyncOperation
from syncops.services.push import JOB_INDEX, Group, _job_index, _mark_sent, _snapshot


@pytest.mark.parametrize("vendor", ["postgresql", "portable"])
def test_mark_sent_records_each_items_index_in_the_job(seller, make_item, monkeypatch, vendor):
    if vendor == "portable":
        # The embedded local run is SQLite; there is none under the test suite, so the portable
        # branch is taken on PostgreSQL by hiding the vendor (the statement itself is portable SQL).
        monkeypatch.setattr(connection, "vendor", "sqlite")
    items = [make_item(seller) for _ in range(3)]
    groups = []
    for n, item in enumerate(items):
        ops = [SyncOperation.objects.create(operation_key=f"k-{vendor}-{n}-{i}", seller=seller, kind="push_update",
                                            item=item, product_id=item.product_id, payload={"fields": ["price_cents"]})
               for i in range(n + 1)]  # one item with several operations shares one index
        groups.append(Group(item=_snapshot(item), ops=ops))
    _mark_sent("job-1", groups)
    for index, g in enumerate(groups):
        for op in g.ops:
            op.refresh_from_db()
            assert op.cardtrader_job_uuid == "job-1"
            assert op.result == {JOB_INDEX: index}
        assert _job_index(g) == index
    assert SyncOperation.objects.filter(heartbeat_at__isnull=True).count() == 0
