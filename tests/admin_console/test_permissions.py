"""Who may see and act: staff only; the read-only group sees every page but no action, and a
hand-made POST of an action (or of a custom console view) is a 403 that changes nothing."""
from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from inventory.models import SyncSettings
from syncops.models import OperationState, SyncOperation
from tests.admin_console.conftest import post_action

pytestmark = pytest.mark.django_db

PAGES = [
    "admin:index",
    "admin:syncops_syncoperation_changelist",
    "admin:syncops_webhookevent_changelist",
    "admin:syncops_conflict_changelist",
    "admin:syncops_orderledger_changelist",
    "admin:inventory_syncsettings_changelist",
    "admin:inventory_inventoryitem_changelist",
    "admin:django_celery_beat_periodictask_changelist",
    "admin:syncops_dashboard_json",
]


def test_the_group_grants_view_permissions_only():
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from syncops.services.staff_groups import READONLY_GROUP

    call_command("setup_staff_groups")

    codenames = set(Group.objects.get(name=READONLY_GROUP).permissions.values_list("codename", flat=True))
    assert {"view_syncoperation", "view_syncsettings", "view_inventoryitem", "view_webhookevent",
            "view_periodictask"} <= codenames
    assert all(c.startswith("view_") for c in codenames)


def test_setup_staff_groups_command_is_idempotent():
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from syncops.services.staff_groups import READONLY_GROUP

    call_command("setup_staff_groups")
    before = set(Group.objects.get(name=READONLY_GROUP).permissions.values_list("pk", flat=True))
    call_command("setup_staff_groups")
    call_command("setup_staff_groups")
    assert set(Group.objects.get(name=READONLY_GROUP).permissions.values_list("pk", flat=True)) == before
    assert Group.objects.filter(name=READONLY_GROUP).count() == 1


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_and_non_staff_are_sent_to_login(name, db):
    from inventory.models import User

    anonymous = Client().get(reverse(name))
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    seller = Client()
    seller.force_login(User.objects.create_user(username="a-seller", password="x"))
    response = seller.get(reverse(name))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("name", PAGES)
def test_readonly_staff_sees_every_page(readonly_client, name):
    assert readonly_client.get(reverse(name)).status_code == 200


def test_readonly_staff_sees_no_actions_and_posting_one_is_403(readonly_client, make_seller, make_operation):
    seller = make_seller()
    failed = make_operation(seller, state=OperationState.FAILED)
    url = reverse("admin:syncops_syncoperation_changelist")
    page = readonly_client.get(url).content.decode()
    assert "retry_selected" not in page and 'name="action"' not in page

    response = post_action(readonly_client, url, "retry_selected", [failed.pk])
    assert response.status_code == 403
    assert SyncOperation.objects.get(pk=failed.pk).state == OperationState.FAILED
    assert not LogEntry.objects.exists()


def test_readonly_staff_cannot_pause_replace_token_or_clear_caches(readonly_client, make_seller):
    seller = make_seller()
    changelist = reverse("admin:inventory_syncsettings_changelist")
    change = reverse("admin:inventory_syncsettings_change", args=[seller.pk])
    page = readonly_client.get(change).content.decode()
    assert 'data-action="pause"' not in page and "Replace CardTrader token" not in page

    assert post_action(readonly_client, changelist, "pause", [seller.pk]).status_code == 403
    assert SyncSettings.objects.get(user=seller).paused is False
    token = readonly_client.post(reverse("admin:inventory_syncsettings_token", args=[seller.pk]),
                                 {"cardtrader_token": "x"})
    assert token.status_code == 403
    assert readonly_client.post(reverse("admin:inventory_syncsettings_clear_all_caches")).status_code == 403
    # The model form itself: a view-only user's POST is refused by Django's change view.
    assert readonly_client.post(change, {"batch_size": "5"}).status_code == 403
    assert SyncSettings.objects.get(user=seller).batch_size is None


def test_readonly_staff_cannot_edit_items(readonly_client, make_seller, make_item):
    item = make_item(make_seller())
    url = reverse("admin:inventory_inventoryitem_change", args=[item.pk])
    page = readonly_client.get(url).content.decode()
    assert 'name="quantity"' not in page and 'name="_save"' not in page
    response = readonly_client.post(url, {"quantity": "1", "price_cents": "250", "properties": "{}"})
    assert response.status_code == 403
    item.refresh_from_db()
    assert item.quantity == 5 and not SyncOperation.objects.filter(item=item).exists()


def test_full_staff_sees_the_actions(staff_client, make_seller):
    seller = make_seller()
    page = staff_client.get(reverse("admin:syncops_syncoperation_changelist")).content.decode()
    assert "retry_selected" in page and "cancel_selected" in page
    change = staff_client.get(reverse("admin:inventory_syncsettings_change", args=[seller.pk])).content.decode()
    for action in ("start_import", "reconcile_dry_run", "reconcile_apply", "pause", "resume", "reset_breaker",
                   "disconnect", "clear_caches"):
        assert f'data-action="{action}"' in change
    assert "Replace CardTrader token" in change
