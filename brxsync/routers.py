"""Keeps Ebartex's catalogue read-only and everything else off it.

The ``blueprints`` alias is someone else's database: we read print ids from it and must never
write or migrate it, even by accident from a shell. Models opt in with ``catalogue = True`` on
their class (set on ``inventory.catalogue`` models).
"""
from __future__ import annotations

from typing import Any

CATALOGUE_ALIAS = "blueprints"


class CatalogueWriteRefused(Exception):
    """Raised on any attempt to write to the read-only catalogue."""


def _is_catalogue(model: type[Any]) -> bool:
    return bool(getattr(model, "catalogue", False))


class CatalogueRouter:
    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return CATALOGUE_ALIAS if _is_catalogue(model) else "default"

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        if _is_catalogue(model):
            raise CatalogueWriteRefused(
                f"{model.__name__} lives in the read-only Ebartex catalogue; writes are refused"
            )
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        if _is_catalogue(type(obj1)) or _is_catalogue(type(obj2)):
            return _is_catalogue(type(obj1)) and _is_catalogue(type(obj2))
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        if db == CATALOGUE_ALIAS:
            return False
        model = hints.get("model")
        if model is not None and _is_catalogue(model):
            return False
        return True
