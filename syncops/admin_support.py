"""What every staff-console ModelAdmin shares: who acts, the admin log, the refusal of actions.

Django hides actions a user may not run, but a hand-made POST of a hidden action only earns a
"no action selected" message; here it is a 403, so a read-only staff member can neither see nor
run one. Every action writes a ``LogEntry`` per object it touched (``log``), so the admin's
history shows who retried, paused or disconnected what.
"""
from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model, Q
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import format_html

MAX_ACTION_ROWS = 1000  # "select all" over a million operations acts on the first thousand only
COUNT_CAP = 10_000  # changelists count at most this many matching rows


def actor(request: HttpRequest) -> str:
    """How services record the staff member in attempt logs (``admin:<username>``)."""
    return f"admin:{request.user.get_username()}"


def pretty_json(value: Any) -> str:
    """Indented JSON in a <pre>, HTML-escaped (payloads come from CardTrader, i.e. from outside)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="brx-json">{}</pre>', text)


class SellerIdFilter(admin.SimpleListFilter):
    """Filter by seller UUID typed into a box: a dropdown of every seller would not scale."""

    title = "seller"
    parameter_name = "seller"
    template = "admin/brx_input_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return (("", ""),)  # the box replaces the choices; a non-empty tuple makes Django show it

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        if not value:
            return queryset
        try:
            return queryset.filter(seller_id=uuid.UUID(value.strip()))
        except ValueError:
            return queryset.none()


class CappedCountPaginator(Paginator):
    """Counts matching rows only up to COUNT_CAP (``SELECT COUNT(*) FROM (... LIMIT cap)``).

    ``show_full_result_count = False`` spares the unfiltered count, but Django still counts the
    filtered set exactly to paginate it: a full scan of a million operations when the filter has
    no index (kind) or matches most rows. Past the cap the list says "10000 results" and pages
    stop at 100 — staff narrow the filter instead of paging through a million rows."""

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[:COUNT_CAP].count()


class ConsoleAdminMixin:
    paginator = CappedCountPaginator

    """Mixed into the console's ModelAdmins (before ``admin.ModelAdmin``)."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        action = request.POST.get("action") if request.method == "POST" else None
        if action and action not in self.get_actions(request):  # type: ignore[attr-defined]
            raise PermissionDenied(f"you may not run {action!r}")
        return super().changelist_view(request, extra_context)  # type: ignore[misc]

    def require_change(self, request: HttpRequest, obj: Model | None = None) -> None:
        if not self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            raise PermissionDenied("read-only staff may not act")

    def log(self, request: HttpRequest, obj: Model, message: str) -> None:
        self.log_change(request, obj, message)  # type: ignore[attr-defined]

    def report(self, request: HttpRequest, verb: str, done: int, skipped: Counter[str],
               *, truncated: bool = False) -> None:
        """One message: how many were ``verb`` and, per reason, how many were skipped."""
        parts = [f"{done} {verb}"]
        if skipped:
            reasons = "; ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
            parts.append(f"{sum(skipped.values())} skipped ({reasons})")
        if truncated:
            parts.append(f"only the first {MAX_ACTION_ROWS} selected rows were processed")
        level = messages.SUCCESS if done and not skipped else messages.WARNING if done else messages.ERROR
        self.message_user(request, ", ".join(parts) + ".", level)  # type: ignore[attr-defined]


def exact_search(queryset: Any, term: str, *, text: tuple[str, ...] = (), numbers: tuple[str, ...] = ()) -> Any:
    """Rows where one of the fields equals ``term`` exactly, each test served by its own index.

    Django's ``=field`` search is ``iexact`` (UPPER() defeats the btree indexes) and compares an
    integer column as text when the term is not a number: both are full scans at a million rows."""
    term = term.strip()
    if not term:
        return queryset
    match = Q(pk__in=[])
    for name in text:
        match |= Q(**{name: term})
    if term.isdigit() and int(term) < 2**63:
        for name in numbers:
            match |= Q(**{name: int(term)})
    return queryset.filter(match)


def bounded(queryset: Any) -> tuple[list[Any], bool]:
    """At most MAX_ACTION_ROWS rows of an action's selection, and whether more were selected."""
    rows = list(queryset[: MAX_ACTION_ROWS + 1])
    return rows[:MAX_ACTION_ROWS], len(rows) > MAX_ACTION_ROWS

