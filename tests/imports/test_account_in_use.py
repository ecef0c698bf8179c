"""One CardTrader account, one connected seller: a second seller's connect is refused."""
from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from inventory.models import ConnectionState, SyncSettings
from syncops.services.connection import AccountInUse, connection_connect, connection_disconnect
from tests.api.conftest import assert_envelope


def _url(seller_id) -> str:
    return f"/api/v1/sellers/{seller_id}/connection"


@pytest.mark.django_db
def test_second_seller_is_refused_until_the_first_disconnects(sandbox_settings, sandbox_account, seller_client):
    first, second = uuid.uuid4(), uuid.uuid4()
    body = {"cardtrader_token": sandbox_account.token}
    assert seller_client(first).put(_url(first), body, format="json").status_code == 200

    refused = seller_client(second).put(_url(second), body, format="json")
    assert_envelope(refused, 409, "cardtrader_account_in_use")
    assert str(first) not in refused.content.decode()  # the other seller is not named
    assert not SyncSettings.objects.filter(user_id=second, connection_state=ConnectionState.CONNECTED).exists()
    assert not SyncSettings.objects.filter(user_id=second).exclude(token_encrypted="").exists()  # no secret kept

    assert seller_client(first).put(_url(first), body, format="json").status_code == 200  # reconnecting is fine
    connection_disconnect(seller_id=first)
    assert seller_client(second).put(_url(second), body, format="json").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_sellers_connecting_one_account_at_once_one_wins(sandbox_settings, cardtrader_sandbox):
    """Each round: two threads, each its own database connection, connect different sellers with
    the same token released together; the transaction lock on the account lets exactly one in."""
    for _ in range(4):
        account = cardtrader_sandbox.control.create_account(name="Race Shop")
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def connect() -> None:
            try:
                barrier.wait()
                connection_connect(seller_id=uuid.uuid4(), token=account.token)
                outcomes.append("connected")
            except AccountInUse:
                outcomes.append("refused")
            finally:
                connection.close()

        threads = [threading.Thread(target=connect) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["connected", "refused"]
        assert SyncSettings.objects.filter(cardtrader_user_id=account.user_id,
                                           connection_state=ConnectionState.CONNECTED).count() == 1
