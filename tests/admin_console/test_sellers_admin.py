"""Sellers (sync settings) in the console: each action calls the API's service and is logged;
the token is never shown and is replaced through the connect service (validated by the sandbox)."""
from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from inventory.models import ConnectionState, SyncSettings, SyncStatus, User
from syncops.models import Conflict, ConflictKind, OperationKind, SyncOperation
from tests.admin_console.conftest import messages_of, post_action

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:inventory_syncsettings_changelist"


@pytest.fixture(autouse=True)
def _isolated_mapping_cache(settings):
    from inventory.catalogue_mapping import clear_local_cache

    settings.CATALOGUE_MAPPING_CACHE_PREFIX = f"bpmap-admin-{uuid.uuid4().hex[:10]}"
    clear_local_cache()
    yield
    clear_local_cache()


@pytest.fixture
def connected_seller(sandbox_settings, sandbox_account, own_guard):
    from syncops.services.connection import connection_connect

    seller_id = uuid.uuid4()
    connection_connect(seller_id=seller_id, token=sandbox_account.token)
    return User.objects.get(pk=seller_id)


def _log_messages(user, obj) -> list[str]:
    return [e.get_change_message() for e in LogEntry.objects.filter(user=user, object_id=str(obj.pk))]


def test_pause_and_resume_go_through_the_connection_service(staff_client, staff_user, make_seller):
    seller = make_seller(connection_state=ConnectionState.CONNECTED, token_encrypted="x")
    response = post_action(staff_client, reverse(CHANGELIST), "pause", [seller.pk])
    assert "1 paused" in " ".join(messages_of(response))
    sync = SyncSettings.objects.get(user=seller)
    assert sync.paused is True and sync.sync_status == SyncStatus.PAUSED

    again = post_action(staff_client, reverse(CHANGELIST), "pause", [seller.pk])
    assert "1 skipped (1 already paused)" in " ".join(messages_of(again))

    post_action(staff_client, reverse(CHANGELIST), "resume", [seller.pk])
    sync.refresh_from_db()
    assert sync.paused is False and sync.sync_status == SyncStatus.IDLE
    assert _log_messages(staff_user, sync) == ["resumed via the staff console", "paused via the staff console"]


def test_start_import_and_reconcile_create_operations_like_the_api(staff_client, staff_user, connected_seller):
    url = reverse(CHANGELIST)
    response = post_action(staff_client, url, "start_import", [connected_seller.pk])
    assert "1 import started" in " ".join(messages_of(response))
    op = SyncOperation.objects.get(seller=connected_seller, kind=OperationKind.IMPORT)
    assert op.payload["requested_by"] == f"admin:{staff_user.username}"

    busy = post_action(staff_client, url, "reconcile_dry_run", [connected_seller.pk])
    assert "busy" in " ".join(messages_of(busy))  # the import holds the seller's lease: 409 in the API
    assert not SyncOperation.objects.filter(seller=connected_seller, kind=OperationKind.RECONCILE).exists()

    from syncops.services.lease import lease_release, owner_for

    assert lease_release(connected_seller.pk, owner_for(op.pk))  # as the import would when it ends
    post_action(staff_client, url, "reconcile_dry_run", [connected_seller.pk])
    reconcile = SyncOperation.objects.get(seller=connected_seller, kind=OperationKind.RECONCILE)
    assert reconcile.payload["dry_run"] is True


def test_start_import_refuses_a_disconnected_seller(staff_client, make_seller):
    seller = make_seller()
    response = post_action(staff_client, reverse(CHANGELIST), "start_import", [seller.pk])
    assert "1 skipped (1 not_connected)" in " ".join(messages_of(response))
    assert not SyncOperation.objects.filter(seller=seller).exists()


def test_reset_breaker_closes_an_open_seller_breaker(staff_client, make_seller, own_guard):
    from ratelimit.guard import Outcome
    from ratelimit.selectors import seller_status

    seller = make_seller()
    for _ in range(5):
        own_guard.record(seller_id=str(seller.pk), outcome=Outcome.AUTH_ERROR)
    assert seller_status(str(seller.pk), guard=own_guard).breaker.state.label == "open"

    response = post_action(staff_client, reverse(CHANGELIST), "reset_breaker", [seller.pk])
    assert "1 breaker reset" in " ".join(messages_of(response))
    assert seller_status(str(seller.pk), guard=own_guard).breaker.state.label == "closed"


def test_disconnect_wipes_the_token_and_keeps_the_stock(staff_client, connected_seller, make_item):
    make_item(connected_seller)
    post_action(staff_client, reverse(CHANGELIST), "disconnect", [connected_seller.pk])
    sync = SyncSettings.objects.get(user=connected_seller)
    assert sync.token_encrypted == "" and sync.connection_state == ConnectionState.DISCONNECTED
    assert connected_seller.inventory_items.count() == 1


def test_token_is_never_shown_and_is_replaced_through_connect(staff_client, staff_user, connected_seller,
                                                              sandbox_account, cardtrader_sandbox):
    change = staff_client.get(reverse("admin:inventory_syncsettings_change", args=[connected_seller.pk]))
    html = change.content.decode()
    sync = SyncSettings.objects.get(user=connected_seller)
    assert sandbox_account.token not in html and sync.token_encrypted not in html
    assert sync.webhook_url in html

    url = reverse("admin:inventory_syncsettings_token", args=[connected_seller.pk])
    refused = staff_client.post(url, {"cardtrader_token": "not-a-real-token"})
    assert refused.status_code == 200 and "CardTrader rejected the token" in refused.content.decode()
    assert SyncSettings.objects.get(user=connected_seller).get_token() == sandbox_account.token

    other = cardtrader_sandbox.control.create_account(name="Other Shop")
    accepted = staff_client.post(url, {"cardtrader_token": other.token})
    assert accepted.status_code == 302
    sync.refresh_from_db()
    assert sync.get_token() == other.token and sync.cardtrader_user_id == other.user_id
    assert other.token not in staff_client.get(accepted["Location"]).content.decode()
    assert any("token replaced" in m for m in _log_messages(staff_user, sync))


def test_changelist_shows_items_from_the_stats_view_and_open_conflicts(staff_client, make_seller, make_item,
                                                                       django_assert_max_num_queries):
    sellers = [make_seller() for _ in range(12)]
    for seller in sellers[:3]:
        for _ in range(4):
            make_item(seller)
    Conflict.objects.create(seller=sellers[0], kind=ConflictKind.OVERSELL)
    Conflict.objects.create(seller=sellers[0], kind=ConflictKind.DRIFT)
    Conflict.objects.create(seller=sellers[0], kind=ConflictKind.DRIFT, resolved_at="2026-01-01T00:00:00Z")
    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW mv_user_inventory_stats")

    with django_assert_max_num_queries(8):  # not one query per row
        response = staff_client.get(reverse(CHANGELIST))
    rows = {row.user_id: row for row in response.context["cl"].result_list}
    assert rows[sellers[0].pk].items_count == 4 and rows[sellers[0].pk].open_conflicts_count == 2
    assert rows[sellers[5].pk].items_count is None and rows[sellers[5].pk].open_conflicts_count == 0


def test_detail_shows_recent_operations_and_rate_limit_state(staff_client, make_seller, make_operation, own_guard):
    seller = make_seller()
    ops = [make_operation(seller) for _ in range(3)]
    html = staff_client.get(reverse("admin:inventory_syncsettings_change", args=[seller.pk])).content.decode()
    for op in ops:
        assert reverse("admin:syncops_syncoperation_change", args=[op.pk]) in html
    assert "rate_limited_last_hour" in html and "factor" in html


def test_clear_caches_drops_the_sellers_blueprint_mappings(staff_client, staff_user, make_seller, make_item):
    from inventory.catalogue_mapping import cache_prefix

    seller, other = make_seller(), make_seller()
    make_item(seller, blueprint_id=111)
    make_item(other, blueprint_id=222)
    cache.set_many({f"{cache_prefix()}:111": "cards_prints:1", f"{cache_prefix()}:222": "cards_prints:2"})

    post_action(staff_client, reverse(CHANGELIST), "clear_caches", [seller.pk])
    assert cache.get(f"{cache_prefix()}:111") is None
    assert cache.get(f"{cache_prefix()}:222") == "cards_prints:2"

    response = staff_client.post(reverse("admin:inventory_syncsettings_clear_all_caches"), follow=True)
    assert "Caches cleared for every seller" in " ".join(messages_of(response))
    assert cache.get(f"{cache_prefix()}:222") is None
    assert LogEntry.objects.filter(user=staff_user, object_repr="all sellers").exists()


def test_override_edit_is_saved_and_logged(staff_client, staff_user, make_seller):
    seller = make_seller()
    url = reverse("admin:inventory_syncsettings_change", args=[seller.pk])
    response = staff_client.post(url, {"batch_size": "50", "reserved_share": "0.3"})
    assert response.status_code == 302
    sync = SyncSettings.objects.get(user=seller)
    assert (sync.batch_size, sync.reserved_share) == (50, 0.3)
    bad = staff_client.post(url, {"batch_size": "50", "reserved_share": "2"})
    assert bad.status_code == 200  # the model's check constraint is validated by the form
    assert SyncSettings.objects.get(user=seller).reserved_share == 0.3


def test_a_button_on_the_seller_page_returns_to_that_page(staff_client, make_seller):
    seller = make_seller(connection_state=ConnectionState.CONNECTED, token_encrypted="x")
    response = staff_client.post(reverse(CHANGELIST), {
        "action": "pause", "_selected_action": str(seller.pk), "index": "0", "_back_to_change": str(seller.pk)})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:inventory_syncsettings_change", args=[seller.pk])
    assert SyncSettings.objects.get(user=seller).paused is True


def test_periodic_tasks_show_what_ours_do(staff_client):
    from django.core.management import call_command

    from brxsync.schedules import PERIODIC_TASKS

    call_command("setup_periodic_tasks")
    html = staff_client.get(reverse("admin:django_celery_beat_periodictask_changelist")).content.decode()
    assert "what it does" in html.lower()
    for spec in PERIODIC_TASKS:
        assert spec.name in html
    from django.utils.html import escape

    assert escape(PERIODIC_TASKS[0].description[:60]) in html
