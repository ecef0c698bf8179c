"""``field__any=[...]``: membership as ONE array parameter on PostgreSQL.

psycopg's client-side cursor (Django's default) rewrites a query's placeholders in Python, and a
query this long is not cached: an ``IN`` list of 500 ids cost ~10–20 ms per statement to send,
against ~6 ms for ``= ANY(%s)`` with the same ids as one array (a 500-id UPDATE of the outbox,
measured in one run). Push runs issue such statements for every 100–500 items they claim, send
and land. Elsewhere (SQLite for the local run) it is exactly ``__in``.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject
from django.db.models.lookups import In


class AnyOf(In):
    lookup_name = "any"

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        if not self.rhs_is_direct_value():  # a subquery: IN (SELECT …) is what PostgreSQL wants
            return super().as_sql(compiler, connection)
        present = [v for v in self.rhs if v is not None]  # NULL is never equal to anything
        if not present:
            raise EmptyResultSet  # as ``__in=[]``: the condition matches nothing
        lhs, lhs_params = self.process_lhs(compiler, connection)
        _, values = self.batch_process_rhs(compiler, connection, present)
        return f"{lhs} = ANY(%s)", (*lhs_params, list(values))


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # related fields keep a lookup table of their own
