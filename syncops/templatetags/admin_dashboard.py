"""``{% dashboard_snapshot as dash %}`` for the admin index (templates/admin/index.html).

A tag rather than a custom AdminSite: the project keeps Django's default site, and the index
only gains a block. Staff without view access to operations get None (and see no dashboard).
"""
from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def dashboard_snapshot(context: dict[str, Any]) -> dict[str, Any] | None:
    request = context.get("request")
    if request is None or not request.user.has_perm("syncops.view_syncoperation"):
        return None
    from syncops.selectors.dashboard import dashboard_snapshot as snapshot

    return snapshot()


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None
