"""Staff search of stock by name, through the per-blueprint name table.

The stock table has no name index (a trigram index over every row was a fifth of a big import's
database work); names live in ``BlueprintName``, which PostgreSQL's triggers keep complete for
every (blueprint, name) pair a stock row has. A search finds the matching pairs there (trigram
index), then the items of those blueprints (the (blueprint_id, seller, product_id) index), and
re-checks each item's own name, so the result is exactly the plain ``name__icontains`` search.
"""
from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils.text import smart_split, unescape_string_literal

from inventory.models import BlueprintName


def search_terms(search_term: str) -> list[str]:
    """The words of a search as the admin splits them (quoted phrases kept whole)."""
    bits = []
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit:
            bits.append(bit)
    return bits


def items_named(items: QuerySet[Any], search_term: str) -> QuerySet[Any]:
    """``items`` whose name contains every word of ``search_term`` (case-insensitive).

    On PostgreSQL the candidates are narrowed to the blueprints whose names match first; elsewhere
    (the embedded SQLite run, no triggers filling the name table) the items' names are scanned.
    """
    terms = search_terms(search_term)
    for term in terms:
        items = items.filter(name__icontains=term)
    if not terms or connection.vendor != "postgresql":
        return items
    names = BlueprintName.objects.all()
    for term in terms:
        names = names.filter(name__icontains=term)
    # Two statements on purpose: with the blueprint ids as one array constant the planner knows how
    # many there are (it has no statistics for a LIKE on the items' names, and with the subquery
    # inline it guessed ~40 matching items, scanned the whole table and probed the name table per
    # row: 1.6 s for a common word at a million items, 26 s for three words). A few ids: the
    # blueprint index; most of the catalogue: the primary key backwards until a page is full.
    blueprints = list(names.values_list("blueprint_id", flat=True).distinct())
    return items.filter(blueprint_id__any=blueprints)
