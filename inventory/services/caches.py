"""Clearing the caches staff may need to drop by hand (the seed's "Admin API per clear cache").

Two caches hold data that can go stale when something changes outside the service:

* the blueprint mapping (``inventory.catalogue_mapping``: L1 in each process, L2 in Redis) after
  the Ebartex catalogue is fixed or reloaded;
* the per-seller settings the rate limiter reads (``reserved_share``), cached in each process's
  guard for ``share_cache_seconds``.

L2 is shared, so clearing it takes effect everywhere at once. L1 and the guard's share cache live
in each process: this clears the calling process's copy; other processes (workers) pick the change
up when their short TTL runs out (60 s by default for both), which is what the caches' TTLs are for.

Both the admin action and ``POST /api/v1/admin/caches/clear`` call ``caches_clear``.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from inventory import catalogue_mapping
from inventory.models import InventoryItem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachesCleared:
    scope: str  # "all" or the seller's UUID
    blueprint_keys: int  # L2 keys deleted (for one seller: blueprints of their stock)
    settings_entries: int  # rate-limit settings entries dropped in this process


def _guard_shares() -> dict[str, Any] | None:
    """The default guard's per-seller settings cache, if the guard exists in this process.

    Never creates the guard (that would open a Redis client just to clear an empty cache)."""
    import ratelimit

    guard = getattr(ratelimit, "_default", None)
    return getattr(guard, "_shares", None) if guard is not None else None


def caches_clear(*, seller_id: Any = None) -> CachesCleared:
    """Drop the blueprint-mapping and settings caches, for one seller or for everyone.

    For one seller, only the mappings of blueprints in their stock are dropped (one indexed
    DISTINCT over their items), so clearing one shop never makes every other import slower.
    """
    shares = _guard_shares()
    if seller_id is None:
        prefix = catalogue_mapping.cache_prefix()
        catalogue_mapping.clear_local_cache()
        try:
            deleted = int(cache.delete_pattern(f"{prefix}:*") or 0)
        except AttributeError:  # a backend without key patterns: L2 entries expire by their TTL
            logger.warning("cache backend cannot delete by pattern; L2 mappings expire by TTL")
            deleted = 0
        dropped = len(shares) if shares is not None else 0
        if shares is not None:
            shares.clear()
        logger.info("caches cleared for every seller", extra={"blueprint_keys": deleted})
        return CachesCleared(scope="all", blueprint_keys=deleted, settings_entries=dropped)

    seller_uuid = uuid.UUID(str(seller_id))
    blueprints = list(
        InventoryItem.objects.filter(seller_id=seller_uuid).values_list("blueprint_id", flat=True).distinct()
    )
    if blueprints:
        catalogue_mapping.forget_blueprints(blueprints)
    dropped = 1 if shares is not None and shares.pop(str(seller_uuid), None) is not None else 0
    logger.info("caches cleared for seller %s", seller_uuid, extra={"blueprint_keys": len(blueprints)})
    return CachesCleared(scope=str(seller_uuid), blueprint_keys=len(blueprints), settings_entries=dropped)
