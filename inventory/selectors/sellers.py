"""The seller and their sync status, as the status endpoint (and the admin) show it."""
from __future__ import annotations

import dataclasses
import enum
import importlib
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from brxsync import features
from inventory.models import ConnectionState, SyncSettings, SyncStatus, User

logger = logging.getLogger(__name__)

# ``ratelimit.selectors`` is built by another feature; the status asks it for the seller's limiter
# state (tokens, adaptive factor, 429s, the seller's breaker) and the shared CardTrader breaker,
# and shows ``rate_limit: null`` rather than failing if it is absent or Redis is unreachable.
RATE_LIMIT_SELLER_FUNCTIONS = ("seller_status", "seller_rate_limit_summary")
RATE_LIMIT_SHARED_FUNCTION = "shared_breaker_status"

def seller_get(*, seller_id: Any) -> User | None:
    try:
        return User.objects.filter(pk=uuid.UUID(str(seller_id))).first()
    except ValueError:
        return None


@dataclass(frozen=True)
class SellerStatus:
    seller_id: uuid.UUID
    sync_status: str
    paused: bool
    connection_state: str
    connected_at: datetime | None
    cardtrader_user_id: int | None
    cardtrader_app_name: str
    webhook_url: str | None
    last_sync_at: datetime | None
    last_error: str | None
    running_operation: Any
    pending_operations: int
    open_conflicts: int
    rate_limit: dict[str, Any] | None
    features: dict[str, bool]


def rate_limit_summary(seller_id: uuid.UUID) -> dict[str, Any] | None:
    """The rate limiter's view of the seller, or None if unavailable (not built, Redis down)."""
    try:
        module = importlib.import_module("ratelimit.selectors")
    except ImportError:
        return None
    seller_fn = next((getattr(module, n) for n in RATE_LIMIT_SELLER_FUNCTIONS if hasattr(module, n)), None)
    shared_fn = getattr(module, RATE_LIMIT_SHARED_FUNCTION, None)
    summary: dict[str, Any] = {}
    try:
        if seller_fn is not None:
            summary["seller"] = _jsonable(seller_fn(str(seller_id)))
        if shared_fn is not None:
            summary["shared_breaker"] = _jsonable(shared_fn())
    except Exception:  # a status page must not fail because Redis hiccups
        logger.warning("rate-limit summary for %s unavailable", seller_id, exc_info=True)
        return None
    return summary or None


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def seller_status(*, seller: User) -> SellerStatus:
    from syncops.selectors.conflicts import conflict_open_count
    from syncops.selectors.operations import operation_pending_count, operation_running

    settings_row = SyncSettings.objects.filter(user=seller).first() or SyncSettings(
        user=seller, sync_status=SyncStatus.IDLE, connection_state=ConnectionState.DISCONNECTED
    )
    connected = settings_row.is_connected
    return SellerStatus(
        seller_id=seller.pk,
        sync_status=settings_row.sync_status,
        paused=settings_row.paused,
        connection_state=settings_row.connection_state,
        connected_at=settings_row.connected_at,
        cardtrader_user_id=settings_row.cardtrader_user_id,
        cardtrader_app_name=settings_row.cardtrader_app_name,
        webhook_url=settings_row.webhook_url if connected else None,
        last_sync_at=settings_row.last_sync_at,
        last_error=settings_row.last_error or None,
        running_operation=operation_running(seller_id=seller.pk),
        pending_operations=operation_pending_count(seller_id=seller.pk),
        open_conflicts=conflict_open_count(seller_id=seller.pk),
        rate_limit=rate_limit_summary(seller.pk),
        features=features.all_flags(),
    )
