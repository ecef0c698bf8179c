"""The connection / import / reconcile endpoints over HTTP (Django test client, real sandbox)."""
from __future__ import annotations

import uuid

import pytest

from inventory.models import ConnectionState, InventoryItem, SyncSettings, User
from syncops.models import OperationKind, OperationState, SyncOperation
from tests.api.conftest import assert_envelope

pytestmark = pytest.mark.django_db(databases=["default", "blueprints"])


def _url(seller_id, what):
    return f"/api/v1/sellers/{seller_id}/{what}"


def test_connect_answers_the_webhook_url_and_steps(sandbox_settings, sandbox_account, seller_client):
    seller_id = uuid.uuid4()
    response = seller_client(seller_id).put(_url(seller_id, "connection"),
                                            {"cardtrader_token": sandbox_account.token}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    sync = SyncSettings.objects.get(user_id=seller_id)
    assert body["webhook_url"] == sync.webhook_url and sync.webhook_id in body["webhook_url"]
    assert str(seller_id) not in body["webhook_url"]
    assert body["connection_state"] == "connected" and body["steps"]
    assert (body["cardtrader_user_id"], body["cardtrader_app_id"]) == (sandbox_account.user_id, sandbox_account.app_id)
    assert sync.get_token() == sandbox_account.token and sync.get_shared_secret() == sandbox_account.shared_secret
    assert sandbox_account.token not in sync.token_encrypted  # encrypted at rest
    assert sandbox_account.token not in response.content.decode()


def test_a_rejected_token_is_a_422_with_cardtrader_reason_and_stores_nothing(sandbox_settings, seller_client):
    seller_id = uuid.uuid4()
    response = seller_client(seller_id).put(_url(seller_id, "connection"),
                                            {"cardtrader_token": "not-a-cardtrader-token"}, format="json")
    error = assert_envelope(response, 422, "cardtrader_token_rejected")
    assert "CardTrader rejected the token" in error["message"] and error["details"]["cardtrader_status"] == 401
    # Authentication may have created the seller's bare rows; the connection itself stored nothing.
    sync = SyncSettings.objects.filter(user_id=seller_id).first()
    if sync is not None:
        assert (sync.token_encrypted, sync.shared_secret_encrypted, sync.cardtrader_user_id) == ("", "", None)
        assert sync.connection_state == ConnectionState.DISCONNECTED and sync.connected_at is None


def test_another_sellers_connection_is_a_404(sandbox_settings, sandbox_account, seller_client):
    me, other = uuid.uuid4(), uuid.uuid4()
    response = seller_client(me).put(_url(other, "connection"), {"cardtrader_token": sandbox_account.token},
                                     format="json")
    assert_envelope(response, 404)
    assert not User.objects.filter(pk=other).exists()


def test_import_202_then_409_naming_the_running_operation(connected_seller, seller_client):
    client = seller_client(connected_seller.pk)
    first = client.post(_url(connected_seller.pk, "imports"))
    assert first.status_code == 202, first.content
    op_id = first.json()["operation_id"]
    assert SyncOperation.objects.get(pk=op_id).kind == OperationKind.IMPORT
    second = client.post(_url(connected_seller.pk, "imports"))
    error = assert_envelope(second, 409, "sync_in_progress")
    assert error["details"]["operation"]["id"] == op_id
    recon = client.post(_url(connected_seller.pk, "reconciliations"), {"dry_run": True}, format="json")
    assert_envelope(recon, 409, "sync_in_progress")
    assert SyncOperation.objects.filter(seller=connected_seller).count() == 1


def test_reconcile_202_records_dry_run(connected_seller, seller_client):
    response = seller_client(connected_seller.pk).post(_url(connected_seller.pk, "reconciliations"),
                                                       {"dry_run": True}, format="json")
    assert response.status_code == 202
    op = SyncOperation.objects.get(pk=response.json()["operation_id"])
    assert (op.kind, op.state, op.payload["dry_run"]) == (OperationKind.RECONCILE, OperationState.PENDING, True)
    bad = seller_client(connected_seller.pk).post(_url(connected_seller.pk, "reconciliations"),
                                                  {"dry_run": "perhaps"}, format="json")
    assert_envelope(bad, 400, "validation_error")


def test_pause_blocks_imports_and_disconnect_keeps_stock(connected_seller, seller_client):
    client = seller_client(connected_seller.pk)
    InventoryItem.objects.create(seller=connected_seller, product_id=1, blueprint_id=6, quantity=2)
    paused = client.patch(_url(connected_seller.pk, "connection"), {"paused": True}, format="json")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert_envelope(client.post(_url(connected_seller.pk, "imports")), 409, "seller_paused")
    resumed = client.patch(_url(connected_seller.pk, "connection"), {"paused": False}, format="json")
    assert resumed.json()["paused"] is False

    gone = client.delete(_url(connected_seller.pk, "connection"))
    assert gone.status_code == 200 and gone.json()["connection_state"] == "disconnected"
    assert gone.json()["webhook_url"] is None
    sync = SyncSettings.objects.get(user=connected_seller)
    assert (sync.token_encrypted, sync.shared_secret_encrypted) == ("", "")
    assert sync.connection_state == ConnectionState.DISCONNECTED
    assert InventoryItem.objects.filter(seller=connected_seller).count() == 1
    assert_envelope(client.post(_url(connected_seller.pk, "imports")), 409, "not_connected")
