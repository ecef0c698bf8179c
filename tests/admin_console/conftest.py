"""Fixtures for the staff console: staff users (full and read-only), sellers, operations, a
rate-limit guard on a key prefix of its own (the Redis server is shared)."""
from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from tests.api.conftest import (  # noqa: F401 (API fixtures; jwt_settings is autouse)
    api_key,
    jwt_settings,
    make_token,
    rsa_keys,
    seller_client,
    service_client,
)

_product_ids = itertools.count(800_000_000)


@pytest.fixture
def staff_user(db):
    from inventory.models import User

    return User.objects.create_superuser(username=f"staff-{uuid.uuid4().hex[:6]}", password="pw-staff-1")


@pytest.fixture
def readonly_user(db):
    from django.apps import apps
    from django.contrib.auth.models import Group

    from inventory.models import User
    from syncops.services.staff_groups import READONLY_GROUP, ensure_readonly_staff_group

    # syncops 0003 creates the group, but the reused test database is flushed by every
    # transactional test, so make sure of it here (the same idempotent function).
    ensure_readonly_staff_group(apps)
    user = User.objects.create_user(username=f"viewer-{uuid.uuid4().hex[:6]}", password="pw-viewer-1",
                                    is_staff=True)
    user.groups.add(Group.objects.get(name=READONLY_GROUP))
    return user


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def readonly_client(readonly_user) -> Client:
    client = Client()
    client.force_login(readonly_user)
    return client


@pytest.fixture
def make_seller(db) -> Callable[..., Any]:
    from inventory.models import SyncSettings, User

    def make(**settings_fields: Any) -> Any:
        user = User.objects.create(username=f"seller-{uuid.uuid4().hex[:8]}")
        SyncSettings.objects.create(user=user, **settings_fields)
        return user

    return make


@pytest.fixture
def make_item() -> Callable[..., Any]:
    def make(seller: Any, **fields: Any) -> Any:
        from inventory.models import InventoryItem

        defaults = {"product_id": next(_product_ids), "blueprint_id": 6, "game_id": 1, "quantity": 5,
                    "price_cents": 250, "name": "Lightning Bolt",
                    "properties": {"condition": "Near Mint", "mtg_foil": False}}
        defaults.update(fields)
        return InventoryItem.objects.create(seller=seller, **defaults)

    return make


@pytest.fixture
def make_operation() -> Callable[..., Any]:
    from syncops.models import OperationKind, SyncOperation

    def make(seller: Any, **fields: Any) -> SyncOperation:
        fields.setdefault("kind", OperationKind.PUSH_UPDATE)
        fields.setdefault("operation_key", f"test:{uuid.uuid4().hex}")
        return SyncOperation.objects.create(seller=seller, **fields)

    return make


@pytest.fixture
def own_guard(unique_prefix, monkeypatch) -> Iterator[Any]:
    """The process's default rate-limit guard, on a key prefix of this test's own."""
    import ratelimit
    from ratelimit.selectors import reserved_share_override
    from ratelimit.services import RedisGuard

    guard = RedisGuard(prefix=unique_prefix, reserved_share_for=reserved_share_override)
    monkeypatch.setattr(ratelimit, "_default", guard)
    yield guard
    keys = list(guard.client.scan_iter(match=f"{unique_prefix}:*", count=1000))
    if keys:
        guard.client.delete(*keys)


def post_action(client: Client, url: str, action: str, ids: list[Any], **extra: Any) -> Any:
    """POST a changelist action as the admin's form does."""
    data = {"action": action, "_selected_action": [str(i) for i in ids], "index": "0", **extra}
    return client.post(url, data, follow=True)


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []
