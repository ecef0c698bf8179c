"""Blueprint → Ebartex print mapping against the real MariaDB catalogue, with its two caches."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connections
from django.test.utils import CaptureQueriesContext

from inventory.catalogue_mapping import (
    CatalogueUnavailable,
    cache_prefix,
    clear_local_cache,
    map_blueprints,
)
from tests.catalogue_schema import load_prints

pytestmark = pytest.mark.django_db(databases=["default", "blueprints"])


def _catalogue_queries():
    return CaptureQueriesContext(connections["blueprints"])


def test_maps_across_the_four_tables_with_precedence():
    load_prints("cards_prints", [(10, 1, "a"), (12, 2, "b"), (11, 2, "b-reprint")])
    load_prints("op_prints", [(20, 3, "op")])
    load_prints("pk_prints", [(30, 4, "pk"), (31, 1, "also in cards")])
    load_prints("sealed_products", [(40, 5, "box")])
    got = map_blueprints([1, 2, 3, 4, 5, 6])
    assert got == {
        1: ("cards_prints", 10),  # cards_prints wins over pk_prints
        2: ("cards_prints", 11),  # lowest print id within a table
        3: ("op_prints", 20),
        4: ("pk_prints", 30),
        5: ("sealed_products", 40),
        6: None,  # unknown: recorded as unmapped, not dropped
    }


def test_l1_then_l2_spare_the_catalogue_and_misses_are_cached():
    load_prints("cards_prints", [(10, 1, "a")])
    for t in ("op_prints", "pk_prints", "sealed_products"):
        load_prints(t, [])
    with _catalogue_queries() as first:
        assert map_blueprints([1, 99]) == {1: ("cards_prints", 10), 99: None}
    assert len(first.captured_queries) >= 1
    with _catalogue_queries() as l1:
        assert map_blueprints([1, 99]) == {1: ("cards_prints", 10), 99: None}
    assert l1.captured_queries == []
    clear_local_cache()
    with _catalogue_queries() as l2:
        assert map_blueprints([1, 99]) == {1: ("cards_prints", 10), 99: None}
    assert l2.captured_queries == []
    # The miss lives in Redis with a short TTL; the hit with a long one.
    assert cache.get(f"{cache_prefix()}:99") == ""
    assert 0 < cache.ttl(f"{cache_prefix()}:99") <= 300
    assert cache.ttl(f"{cache_prefix()}:1") > 3600


def test_lookups_are_batched():
    load_prints("cards_prints", [(i, i, "") for i in range(1, 2501)])
    with _catalogue_queries() as q:
        got = map_blueprints(range(1, 2601))
    assert sum(v is not None for v in got.values()) == 2500
    # ceil(2600/1000) = 3 queries on cards_prints, then only the 100 misses on each other table.
    assert len(q.captured_queries) == 3 + 3


@pytest.mark.django_db(databases=["default", "blueprints"], transaction=True)
def test_a_catalogue_outage_raises_instead_of_mapping_nothing(catalogue_down):
    with pytest.raises(CatalogueUnavailable, match="catalogue cannot be read"):
        map_blueprints([123456])
