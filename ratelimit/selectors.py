"""Reads: a seller's limiter status for admin and the API, breakers away from CLOSED, and the
per-seller reserved-share override from the database."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .breakers import BreakerSnapshot, BreakerState
from .buckets import SHARED_TAG

if TYPE_CHECKING:
    from .services import RedisGuard


@dataclass(frozen=True)
class SellerStatus:
    seller_id: str
    tokens: float
    jobs_tokens: float
    factor: float
    rate_limited_last_hour: int
    breaker: BreakerSnapshot
    capacity: int
    waits_last_hour: int = 0  # decisions refused for lack of tokens (the caller waited or re-scheduled)

    @property
    def effective_capacity(self) -> float:
        return self.capacity * self.factor


def _guard(guard: RedisGuard | None) -> RedisGuard:
    if guard is not None:
        return guard
    from . import get_default_guard

    return get_default_guard()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def seller_status(seller_id: str, *, guard: RedisGuard | None = None) -> SellerStatus:
    """Tokens settled to Redis's now, without writing anything."""
    g = _guard(guard)
    reply = g.scripts.status(
        g.client,
        [g.keys.bucket(seller_id), g.keys.breaker(seller_id), g.keys.rate_limited(seller_id), g.keys.waits(seller_id)],
        [],
    )
    return SellerStatus(
        seller_id=seller_id,
        tokens=float(_text(reply[0])),
        jobs_tokens=float(_text(reply[1])),
        factor=float(_text(reply[2])),
        rate_limited_last_hour=int(reply[3]),
        breaker=BreakerSnapshot.from_reply(seller_id, reply[5:11]),
        capacity=int(g.buckets.bucket_size),
        waits_last_hour=int(reply[11]),
    )


def sellers_status(seller_ids: list[str], *, guard: RedisGuard | None = None) -> dict[str, SellerStatus]:
    g = _guard(guard)
    return {sid: seller_status(sid, guard=g) for sid in seller_ids}


@dataclass(frozen=True)
class LimitedLastHour:
    """429s and waits of the last hour summed over the sellers that had any (dashboard)."""

    rate_limited: int
    waits: int
    throttled_sellers: int  # of those, sellers whose adaptive factor is below nominal now
    sellers: int  # sellers summed over (at most the ``most`` asked for, most recent first)


def limited_last_hour(*, most: int = 200, guard: RedisGuard | None = None) -> LimitedLastHour:
    """Sum the per-seller hourly counts over the sellers in ``keys.limited()`` marked within the
    hour (plus the marking slack), most recent first, at most ``most`` of them: one status
    script call each."""
    from .services import EVENT_INDEX_REFRESH_SECONDS

    g = _guard(guard)
    since = time.time() - 3600 - EVENT_INDEX_REFRESH_SECONDS
    sellers = [_text(m) for m in g.client.zrevrangebyscore(g.keys.limited(), "+inf", since, start=0, num=most)]
    statuses = [seller_status(seller, guard=g) for seller in sellers]
    return LimitedLastHour(
        rate_limited=sum(s.rate_limited_last_hour for s in statuses),
        waits=sum(s.waits_last_hour for s in statuses),
        throttled_sellers=sum(1 for s in statuses if s.factor < 1.0),
        sellers=len(statuses),
    )


def shared_breaker_status(*, guard: RedisGuard | None = None) -> BreakerSnapshot:
    """Read through the breaker script's ``tick`` (applies a due OPEN → HALF_OPEN, nothing else)."""
    return _guard(guard).breaker_op(SHARED_TAG, "tick")[1]


def breakers_not_closed(*, guard: RedisGuard | None = None) -> list[BreakerSnapshot]:
    """Breakers in the open-breaker index that are still open or half-open, oldest trip first."""
    g = _guard(guard)
    names = [_text(m) for m in g.client.zrange(g.keys.open_breakers(), 0, -1)]
    snaps = [g.breaker_op(name, "tick")[1] for name in names]
    return sorted((s for s in snaps if s.state is not BreakerState.CLOSED), key=lambda s: s.since)


def stuck_breakers(*, guard: RedisGuard | None = None) -> list[BreakerSnapshot]:
    g = _guard(guard)
    now = time.time()
    return [s for s in breakers_not_closed(guard=g) if s.stuck(g.breakers, now)]


def reserved_share_override(seller_id: str) -> float | None:
    """``SyncSettings.reserved_share`` for a seller id that is a user UUID; None otherwise
    (connect-time ``token:…`` keys, unknown sellers, or a database we cannot reach: the
    configured default then applies, which is the safe side of a soft policy)."""
    from django.db import DatabaseError

    from inventory.models import SyncSettings

    try:
        user_id = uuid.UUID(seller_id)
    except ValueError:
        return None
    try:
        return SyncSettings.objects.filter(user_id=user_id).values_list("reserved_share", flat=True).first()
    except DatabaseError:
        return None
