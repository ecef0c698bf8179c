"""CardTrader blueprint id → Ebartex print (table, id), through the read-only catalogue.

An import maps 250,000 products but only a few thousand distinct blueprints, so lookups go
through three levels: an in-process LRU (L1, per worker, short TTL), the Django cache in Redis
(L2, shared by workers), then batched ``IN`` queries over the four print tables (``PRINT_MODELS``
order: the first table holding a blueprint wins, the lowest print id within a table).

Misses ("no print for this blueprint") are cached too, briefly, so a blueprint Ebartex has not
catalogued yet costs one query per few minutes, not one per product — and shows up soon after it
is catalogued.

A catalogue that cannot be read raises ``CatalogueUnavailable``: the import fails loudly instead of
recording every product as unmapped (the prior implementation's silent failure). A Redis (L2)
outage only costs speed: the catalogue is still the source of truth.

Keys carry ``CATALOGUE_MAPPING_CACHE_PREFIX`` (default ``bpmap``): bump it to drop every cached
mapping after a catalogue reload; tests use a unique one each.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError

from inventory.catalogue import PRINT_MODELS

logger = logging.getLogger(__name__)

PrintRef = tuple[str, int]  # (print table, print id)
MISS = ""  # how a cached "no print" is stored in L2 (None means "not cached")
QUERY_BATCH = 1000  # ids per IN (...) list


class CatalogueUnavailable(Exception):
    """The catalogue could not be read: mapping would silently drop products, so stop instead."""


def cache_prefix() -> str:
    return settings.CATALOGUE_MAPPING_CACHE_PREFIX


class _LRU:
    """A small thread-safe LRU with per-entry expiry (L1)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[tuple[str, int], tuple[float, PrintRef | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int], now: float) -> tuple[bool, PrintRef | None]:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return False, None
            if entry[0] < now:
                del self._data[key]
                return False, None
            self._data.move_to_end(key)
            return True, entry[1]

    def put(self, key: tuple[str, int], value: PrintRef | None, expires: float) -> None:
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_l1 = _LRU(maxsize=settings.CATALOGUE_MAPPING_L1_SIZE)


def clear_local_cache() -> None:
    """Forget L1 (tests, or after a catalogue reload together with a new prefix)."""
    _l1.clear()


def _l2_key(prefix: str, blueprint_id: int) -> str:
    return f"{prefix}:{blueprint_id}"


def _encode(ref: PrintRef | None) -> str:
    return MISS if ref is None else f"{ref[0]}:{ref[1]}"


def _decode(raw: str) -> PrintRef | None:
    if raw == MISS:
        return None
    table, _, pid = raw.rpartition(":")
    return table, int(pid)


def _query_catalogue(ids: list[int]) -> dict[int, PrintRef]:
    """One batched query per print table (and per QUERY_BATCH ids), first table wins."""
    found: dict[int, PrintRef] = {}
    remaining = sorted(set(ids))
    try:
        for model in PRINT_MODELS:
            if not remaining:
                break
            table = model._meta.db_table
            for start in range(0, len(remaining), QUERY_BATCH):
                batch = remaining[start:start + QUERY_BATCH]
                rows = model.objects.filter(cardtrader_id__in=batch).values_list("cardtrader_id", "id")
                for cardtrader_id, print_id in rows:
                    current = found.get(cardtrader_id)
                    if current is None or (current[0] == table and print_id < current[1]):
                        found[cardtrader_id] = (table, int(print_id))
            remaining = [i for i in remaining if i not in found]
    except DatabaseError as exc:
        raise CatalogueUnavailable(f"the Ebartex catalogue cannot be read: {exc}") from exc
    return found


def map_blueprints(blueprint_ids: Iterable[int]) -> dict[int, PrintRef | None]:
    """Map every given blueprint id; the answer has a key per id (None = not in the catalogue)."""
    wanted = {int(b) for b in blueprint_ids}
    if not wanted:
        return {}
    prefix = cache_prefix()
    now = time.monotonic()
    hit_ttl = float(settings.CATALOGUE_MAPPING_TTL)
    miss_ttl = float(settings.CATALOGUE_MAPPING_MISS_TTL)
    l1_ttl = float(settings.CATALOGUE_MAPPING_L1_TTL)
    result: dict[int, PrintRef | None] = {}

    missing_l1: list[int] = []
    for bp in wanted:
        ok, ref = _l1.get((prefix, bp), now)
        if ok:
            result[bp] = ref
        else:
            missing_l1.append(bp)
    if not missing_l1:
        return result

    missing_l2 = missing_l1
    try:
        cached = cache.get_many([_l2_key(prefix, bp) for bp in missing_l1])
    except Exception:  # Redis is a cache here: degrade to the catalogue, loudly in the logs
        logger.warning("blueprint mapping cache (L2) unavailable; reading the catalogue", exc_info=True)
        cached = {}
    if cached:
        missing_l2 = []
        for bp in missing_l1:
            raw = cached.get(_l2_key(prefix, bp))
            if raw is None:
                missing_l2.append(bp)
                continue
            ref = _decode(raw)
            result[bp] = ref
            _l1.put((prefix, bp), ref, now + (l1_ttl if ref else min(l1_ttl, miss_ttl)))

    if missing_l2:
        found = _query_catalogue(missing_l2)
        hits: dict[str, str] = {}
        misses: dict[str, str] = {}
        for bp in missing_l2:
            ref = found.get(bp)
            result[bp] = ref
            (hits if ref else misses)[_l2_key(prefix, bp)] = _encode(ref)
            _l1.put((prefix, bp), ref, now + (l1_ttl if ref else min(l1_ttl, miss_ttl)))
        try:
            if hits:
                cache.set_many(hits, timeout=hit_ttl)
            if misses:
                cache.set_many(misses, timeout=miss_ttl)
        except Exception:
            logger.warning("could not write the blueprint mapping cache (L2)", exc_info=True)
    return result


def forget_blueprints(blueprint_ids: Iterable[int]) -> None:
    """Drop cached mappings (L1 and L2) of these blueprints, e.g. after staff fixed the catalogue."""
    prefix = cache_prefix()
    ids = [int(b) for b in blueprint_ids]
    with _l1._lock:
        for bp in ids:
            _l1._data.pop((prefix, bp), None)
    cache.delete_many([_l2_key(prefix, bp) for bp in ids])
