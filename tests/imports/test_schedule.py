"""Scheduled reconciliation: who is due, and how 10,000 sellers spread over the window."""
from __future__ import annotations

import uuid
from collections import Counter

import pytest

from inventory.models import ConnectionState, SyncSettings, SyncStatus, User
from syncops.models import OperationKind, SyncOperation
from syncops.services.reconcile import reconcile_due_sellers, reconcile_offset

pytestmark = pytest.mark.django_db


def _seller(**fields):
    user = User.objects.create(username=f"s-{uuid.uuid4().hex[:8]}")
    sync = SyncSettings.objects.create(user=user, connection_state=ConnectionState.CONNECTED,
                                       sync_status=SyncStatus.ACTIVE, **fields)
    sync.set_credentials(token="t", shared_secret="s")
    sync.save()
    return user


def test_only_connected_unpaused_sellers_without_a_recent_sync_are_due():
    due = _seller()
    recent = _seller()
    SyncOperation.objects.create(seller=recent, kind=OperationKind.IMPORT, operation_key=f"k-{uuid.uuid4()}")
    paused = _seller(paused=True)
    never_imported = _seller()
    SyncSettings.objects.filter(user=never_imported).update(sync_status=SyncStatus.IDLE)
    got = set(reconcile_due_sellers())
    assert due.pk in got
    assert not {recent.pk, paused.pk, never_imported.pk} & got


def test_the_kill_switch_stops_scheduled_reconciles(settings):
    due = _seller()
    assert due.pk in set(reconcile_due_sellers())
    settings.FEATURE_FLAGS = {**settings.FEATURE_FLAGS, "scheduled_reconcile": False}
    assert reconcile_due_sellers() == []


def test_offsets_are_stable_and_spread_10000_sellers_evenly():
    ids = [uuid.uuid4() for _ in range(10_000)]
    assert [reconcile_offset(i, 3600) for i in ids[:50]] == [reconcile_offset(i, 3600) for i in ids[:50]]
    per_minute = Counter(reconcile_offset(i, 3600) // 60 for i in ids)
    assert len(per_minute) == 60
    assert max(per_minute.values()) < 2.0 * 10_000 / 60  # never a thundering herd
