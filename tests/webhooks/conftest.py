"""Fixtures for the webhook tests: connected sellers with a shared secret, stock, deliveries."""
from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tests.webhooks import builders


@dataclass
class Shop:
    user: Any
    settings: Any
    secret: str

    @property
    def url(self) -> str:
        return f"/api/v1/webhooks/cardtrader/{self.settings.webhook_id}/"


def make_shop(*, secret: str | None = None, connected: bool = True) -> Shop:
    from inventory.models import ConnectionState, SyncSettings, User

    user = User.objects.create(username=f"wh-{uuid.uuid4().hex[:10]}")
    secret = secret if secret is not None else secrets.token_hex(32)
    sync = SyncSettings(user=user)
    sync.set_credentials(token=f"tok-{uuid.uuid4().hex}", shared_secret=secret)
    sync.connection_state = ConnectionState.CONNECTED if connected else ConnectionState.DISCONNECTED
    sync.save()
    return Shop(user=user, settings=sync, secret=secret)


def add_stock(shop: Shop, product_id: int, quantity: int):
    from inventory.models import InventoryItem

    return InventoryItem.objects.create(seller=shop.user, product_id=product_id, blueprint_id=16253, quantity=quantity)


@pytest.fixture
def shop(db) -> Shop:
    return make_shop()


@pytest.fixture
def post(client: Client) -> Callable[..., Any]:
    """POST a delivery signed with ``secret`` (the shop's by default) as CardTrader would."""

    def _post(shop: Shop, doc: dict | bytes, *, secret: str | None = None, signature: str | None = None,
              url: str | None = None) -> Any:
        body, good = builders.signed(doc, shop.secret if secret is None else secret)
        headers = {} if signature == "" else {"HTTP_SIGNATURE": good if signature is None else signature}
        return client.post(url or shop.url, data=body, content_type="application/json", **headers)

    return _post
