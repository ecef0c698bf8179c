"""Building clients from settings, so nothing else in the service knows the base URL, the
timeouts or which guard meters CardTrader calls.

The guard comes from ``ratelimit.get_default_guard()`` (the Redis token bucket + breakers) when
the ratelimit app provides it, else ``NullGuard``. The import is lazy: this module must load
before, and without, the limiter.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from django.conf import settings

from ratelimit.guard import NullGuard, RequestGuard

from .client import CardTraderClient
from .errors import NotConnected

if TYPE_CHECKING:
    from inventory.models import SyncSettings


def default_guard() -> RequestGuard:
    try:
        from ratelimit import get_default_guard  # type: ignore[attr-defined]
    except ImportError as exc:
        if exc.name not in (None, "ratelimit"):  # a real import failure inside the limiter: loud
            raise
        return NullGuard()
    return get_default_guard()


def token_key(token: str) -> str:
    """The limiter key for a token with no seller yet (connect): a hash, never the token."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:24]


def _build(token: str, seller_id: str, guard: RequestGuard | None) -> CardTraderClient:
    connect = float(settings.CARDTRADER_CONNECT_TIMEOUT)
    return CardTraderClient(
        token=token,
        seller_id=seller_id,
        base_url=settings.CARDTRADER_API_BASE,
        guard=guard if guard is not None else default_guard(),
        timeout=(connect, float(settings.CARDTRADER_WRITE_TIMEOUT)),
        export_timeout=(connect, float(settings.CARDTRADER_EXPORT_TIMEOUT)),
    )


def client_for_seller(sync_settings: SyncSettings, *, guard: RequestGuard | None = None) -> CardTraderClient:
    """The client for a connected seller, metered under the seller's id."""
    token = sync_settings.get_token()
    if not token:
        raise NotConnected(f"seller {sync_settings.user_id} has no CardTrader token")
    return _build(token, str(sync_settings.user_id), guard)


def client_for_token(token: str, *, guard: RequestGuard | None = None) -> CardTraderClient:
    """A client for a bare token, used to validate it (``info()``) while connecting a seller."""
    if not token or not token.strip():
        raise NotConnected("empty CardTrader token")
    return _build(token.strip(), token_key(token.strip()), guard)
