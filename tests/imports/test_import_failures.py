"""Imports that go wrong: catalogue outage, CardTrader 429 / bad token, races for the lease,
a worker killed with SIGKILL halfway. Each must leave a clear state and no duplicates."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import close_old_connections, connection, connections

from inventory.models import ConnectionState, InventoryItem, SyncSettings, SyncStatus
from syncops.models import OperationState, SyncOperation
from syncops.services.imports import import_run, import_start
from syncops.services.lease import LeaseLost, lease_acquire, lease_release, lease_renew
from syncops.services.sync_runs import SyncBusy
from tests.imports.conftest import assert_within_budget, export_by_id

pytestmark = pytest.mark.django_db(databases=["default", "blueprints"])
CHILD = Path(__file__).with_name("import_child.py")


@pytest.mark.django_db(databases=["default", "blueprints"], transaction=True)
def test_a_catalogue_outage_fails_the_import_loudly(connected_seller, sandbox_account, control, catalogue_down):
    control.seed_products(sandbox_account.user_id, 50, seed=1)
    op = import_start(seller=connected_seller, dispatch=False)
    outcome = import_run(op.pk)
    assert outcome.state == OperationState.FAILED
    op.refresh_from_db()
    assert op.error_code == "catalogue_unavailable" and "catalogue cannot be read" in op.last_error
    sync = SyncSettings.objects.get(user=connected_seller)
    assert sync.sync_status == SyncStatus.ERROR and "catalogue" in sync.last_error
    assert sync.lease_owner == ""  # released: a retry can start at once
    assert not InventoryItem.objects.filter(seller=connected_seller).exists()  # nothing half-written


def test_a_cardtrader_429_defers_the_import_which_then_completes(connected_seller, sandbox_account, control,
                                                                 catalogue_prints):
    control.seed_products(sandbox_account.user_id, 30, seed=2)
    control.set_faults(rate_limit_burst=1, user_id=sandbox_account.user_id)
    op = import_start(seller=connected_seller, dispatch=False)
    first = import_run(op.pk)
    assert first.state == OperationState.PENDING and 5 <= first.countdown <= 11  # CardTrader's documented 10 s
    op.refresh_from_db()
    assert op.next_attempt_at is not None and op.attempts == 1
    assert SyncSettings.objects.get(user=connected_seller).lease_owner == f"op:{op.pk}"  # still reserved
    with pytest.raises(SyncBusy):
        import_start(seller=connected_seller, dispatch=False)
    # The limiter now holds the seller back too (adaptive cut after a 429): the run is deferred
    # again without spending an attempt, and completes once the wait is over.
    outcome = import_run(op.pk)
    deadline = time.monotonic() + 20
    while outcome.state == OperationState.PENDING and time.monotonic() < deadline:
        time.sleep(outcome.countdown)
        outcome = import_run(op.pk)
    assert outcome.state == OperationState.SUCCEEDED
    op.refresh_from_db()
    assert op.attempts == 2  # the 429 spent one attempt; the limiter's own waits spend none
    assert InventoryItem.objects.filter(seller=connected_seller).count() == 30


def test_a_token_cardtrader_rejects_fails_the_import_and_marks_the_connection(connected_seller, control):
    sync = SyncSettings.objects.get(user=connected_seller)
    sync.set_credentials(token="revoked-token", shared_secret="x")
    sync.save()
    outcome = import_run(import_start(seller=connected_seller, dispatch=False).pk)
    assert outcome.state == OperationState.FAILED and outcome.result["error_code"] == "cardtrader_auth"
    assert SyncSettings.objects.get(user=connected_seller).connection_state == ConnectionState.TOKEN_INVALID


@pytest.mark.django_db(databases=["default", "blueprints"], transaction=True)
def test_concurrent_starts_create_exactly_one_operation(connected_seller):
    results: list[object] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        barrier.wait()
        try:
            results.append(import_start(seller=connected_seller, dispatch=False).pk)
        except SyncBusy as exc:
            results.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1 and len(results) == 6
    assert {r.operation.pk for r in results if isinstance(r, SyncBusy)} == set(winners)
    assert SyncOperation.objects.filter(seller=connected_seller).count() == 1


def test_the_lease_expires_so_no_force_flag_is_needed(connected_seller, settings):
    settings.SYNC_LEASE_SECONDS = 0.5
    stuck = import_start(seller=connected_seller, dispatch=False)  # its worker never comes
    with pytest.raises(SyncBusy):
        import_start(seller=connected_seller, dispatch=False)
    time.sleep(0.7)
    fresh = import_start(seller=connected_seller, dispatch=False)
    stuck.refresh_from_db()
    assert (stuck.state, stuck.error_code) == (OperationState.FAILED, "lease_expired")
    assert SyncSettings.objects.get(user=connected_seller).lease_owner == f"op:{fresh.pk}"


def test_lease_renew_and_release_only_work_for_the_holder(connected_seller):
    sid = connected_seller.pk
    assert lease_acquire(sid, "op:1", seconds=30)
    assert not lease_acquire(sid, "op:2", seconds=30)
    assert lease_acquire(sid, "op:1", seconds=30)  # re-entrant for the same operation
    with pytest.raises(LeaseLost):
        lease_renew(sid, "op:2")
    assert not lease_release(sid, "op:2")
    assert lease_release(sid, "op:1")
    assert lease_acquire(sid, "op:2", seconds=30)


@pytest.mark.django_db(databases=["default", "blueprints"], transaction=True)
def test_a_worker_killed_mid_import_leaves_no_duplicates_and_the_next_run_completes(
        connected_seller, sandbox_account, sandbox_settings, control, catalogue_prints, settings):
    uid = sandbox_account.user_id
    control.seed_products(uid, 12_000, seed=9)
    op = import_start(seller=connected_seller, dispatch=False)
    default, bp = connections["default"].settings_dict, connections["blueprints"].settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{default['USER']}@{default['HOST']}:{default['PORT']}/{default['NAME']}",
        BLUEPRINT_DATABASE_URL=f"mysql://{bp['USER'] or 'root'}@{bp['HOST']}:{bp['PORT'] or 3306}/{bp['NAME']}",
        CARDTRADER_API_BASE=settings.CARDTRADER_API_BASE, CHILD_CHUNK_SIZE="300", CHILD_LEASE_SECONDS="2",
        CHILD_CACHE_PREFIX=settings.CATALOGUE_MAPPING_CACHE_PREFIX, CHILD_RL_PREFIX=settings.RATE_LIMIT_KEY_PREFIX,
    )
    child = subprocess.Popen([sys.executable, str(CHILD), str(op.pk)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = SyncOperation.objects.filter(pk=op.pk).values_list("progress_done", flat=True).first()
            if done and done >= 1500:
                break
            assert child.poll() is None, "the import finished before it could be killed"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    op.refresh_from_db()
    written = InventoryItem.objects.filter(seller=connected_seller).count()
    assert op.state == OperationState.RUNNING and 1500 <= written < 12_000, (op.state, written)

    # While the dead worker's lease runs out, the seller is busy (409 naming the operation) ...
    with pytest.raises(SyncBusy) as busy:
        import_start(seller=connected_seller, dispatch=False)
    assert busy.value.operation.pk == op.pk
    # ... and the re-delivered task waits instead of racing a possibly-live worker.
    settings.SYNC_LEASE_SECONDS = 2
    early = import_run(op.pk)
    if early.state == "busy":
        assert early.countdown == 2
        time.sleep(2.2)
    outcome = import_run(op.pk)
    assert outcome.state == OperationState.SUCCEEDED, outcome
    op.refresh_from_db()
    assert op.attempts == 2
    export = export_by_id(control, uid)
    local = list(InventoryItem.objects.filter(seller=connected_seller).values_list("product_id", "quantity"))
    assert len(local) == len({pid for pid, _ in local}) == len(export) == 12_000
    assert dict(local) == {pid: row["quantity"] for pid, row in export.items()}
    assert_within_budget(control, uid)
