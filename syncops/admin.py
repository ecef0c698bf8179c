"""Staff console for operations, webhook deliveries, the order ledger, conflicts and schedules.

Operations and deliveries are read-only records here: every change goes through the services the
API uses (``operation_retry`` / ``operation_cancel``, ``webhook_reapply``), and each action writes
an admin log entry per row. Changelists never count the whole table (``show_full_result_count``),
filter on indexed columns, and use a date filter instead of ``date_hierarchy`` (whose
``SELECT DISTINCT date`` scans every row).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from syncops.admin_support import ConsoleAdminMixin, SellerIdFilter, actor, bounded, exact_search, pretty_json
from syncops.models import Conflict, OrderLedger, SyncOperation, WebhookEvent
from syncops.selectors.dashboard import dashboard_snapshot
from syncops.services.operations import OperationStateError, operation_cancel, operation_retry
from syncops.services.webhooks import WebhookNotFailed, auto_apply_enabled, webhook_reapply


class ReadOnlyRecordAdmin(ConsoleAdminMixin, admin.ModelAdmin):
    """Records written only by services: no add, no edit of fields, no delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        declared = [f for f in self.readonly_fields]
        model_fields = [f.name for f in self.model._meta.concrete_fields if f.name not in declared]
        return [*model_fields, *declared]


@admin.register(SyncOperation)
class SyncOperationAdmin(ReadOnlyRecordAdmin):
    list_display = ("id", "kind", "state", "seller", "product_id", "attempts", "progress", "short_error",
                    "created_at", "finished_at")
    list_filter = ("state", "kind", SellerIdFilter, "created_at")
    search_fields = ("operation_key",)  # the box is shown; get_search_results decides the lookups
    search_help_text = "Exact operation key, CardTrader job uuid or product id."
    list_select_related = ("seller",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice
    ordering = ("-created_at",)
    actions = ("retry_selected", "cancel_selected")
    readonly_fields = ("item_link", "attempts_view", "result_view", "payload_view")
    exclude = ("attempt_log", "result", "payload", "item")
    fieldsets = (
        (None, {"fields": ("kind", "state", "seller", "item_link", "product_id", "operation_key",
                           "cardtrader_job_uuid")}),
        ("Progress", {"fields": ("attempts", "max_attempts", "next_attempt_at", "progress_done", "progress_total",
                                 "dispatched_at", "started_at", "heartbeat_at", "finished_at", "created_at",
                                 "updated_at")}),
        ("Errors", {"fields": ("error_code", "last_error")}),
        ("Attempts", {"fields": ("attempts_view",)}),
        ("CardTrader results", {"fields": ("result_view",)}),
        ("Payload", {"fields": ("payload_view",), "classes": ("collapse",)}),
    )

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        """Exact matches only, each on its own index (Django's "=" is iexact: UPPER() defeats the
        indexes, and it would compare product_id as text for a non-numeric term: a full scan)."""
        return exact_search(queryset, search_term, text=("operation_key", "cardtrader_job_uuid"),
                            numbers=("product_id",)), False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        hidden = set(self.exclude)
        return [f for f in super().get_readonly_fields(request, obj) if f not in hidden]

    @admin.display(description="progress")
    def progress(self, obj: SyncOperation) -> str:
        if obj.progress_total:
            return f"{obj.progress_done}/{obj.progress_total} ({obj.progress_percent}%)"
        return str(obj.progress_done or "")

    @admin.display(description="error")
    def short_error(self, obj: SyncOperation) -> str:
        text = obj.error_code or ""
        if obj.last_error:
            text = f"{text}: {obj.last_error[:80]}" if text else obj.last_error[:80]
        return text

    @admin.display(description="item")
    def item_link(self, obj: SyncOperation) -> str:
        if obj.item_id is None:
            return "—"
        url = reverse("admin:inventory_inventoryitem_change", args=[obj.item_id])
        return format_html('<a href="{}">item #{} (product {})</a>', url, obj.item_id, obj.product_id or "?")

    @admin.display(description="attempt log")
    def attempts_view(self, obj: SyncOperation) -> str:
        return pretty_json(obj.attempt_log or [])

    @admin.display(description="per-item results and errors")
    def result_view(self, obj: SyncOperation) -> str:
        return pretty_json(obj.result or {})

    @admin.display(description="payload")
    def payload_view(self, obj: SyncOperation) -> str:
        return pretty_json(obj.payload or {})

    def _bulk(self, request: HttpRequest, queryset: Any, verb: str, call: Any) -> None:
        rows, truncated = bounded(queryset.select_related(None).order_by("pk").only("pk", "state"))
        done, skipped = 0, Counter[str]()
        for op in rows:
            try:
                changed = call(op.pk)
            except OperationStateError as exc:
                skipped[f"{exc.operation.state} (not allowed: only {', '.join(exc.allowed)})"] += 1
                continue
            except SyncOperation.DoesNotExist:
                skipped["gone"] += 1
                continue
            done += 1
            self.log(request, changed, f"{verb} via the staff console (was {op.state})")
        self.report(request, verb, done, skipped, truncated=truncated)

    @admin.action(description="Retry selected operations (failed, uncertain, partial, cancelled)",
                  permissions=("change",))
    def retry_selected(self, request: HttpRequest, queryset: Any) -> None:
        who = actor(request)
        self._bulk(request, queryset, "retried", lambda pk: operation_retry(operation_id=pk, actor=who))

    @admin.action(description="Cancel selected operations (pending, failed, uncertain)", permissions=("change",))
    def cancel_selected(self, request: HttpRequest, queryset: Any) -> None:
        who = actor(request)
        self._bulk(request, queryset, "cancelled",
                   lambda pk: operation_cancel(operation_id=pk, actor=who, reason="cancelled by staff"))

    # ----------------------------------------------------------------- dashboard JSON

    def get_urls(self) -> list[Any]:
        extra = [path("dashboard.json", self.admin_site.admin_view(self.dashboard_json),
                      name="syncops_dashboard_json")]
        return extra + super().get_urls()

    def dashboard_json(self, request: HttpRequest) -> JsonResponse:
        """The dashboard's numbers for its live refresh; staff with view access only."""
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        response = JsonResponse(dashboard_snapshot())
        response["Cache-Control"] = "no-store"
        return response


class ChoicesFilter(admin.SimpleListFilter):
    """A filter on a plain CharField with a fixed list of values: Django's default for such a
    field (``AllValuesFieldListFilter``) runs ``SELECT DISTINCT`` over the whole table."""

    field = ""
    values: tuple[str, ...] = ()

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return tuple((v, v) for v in self.values)

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(**{self.field: self.value()}) if self.value() in self.values else queryset


class CauseFilter(ChoicesFilter):
    title = parameter_name = field = "cause"
    values = ("order.create", "order.update", "order.destroy")


class ModeFilter(ChoicesFilter):
    title = parameter_name = field = "mode"
    values = ("live", "test")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyRecordAdmin):
    list_display = ("delivery_id", "cause", "object_id", "mode", "state", "seller", "attempts", "received_at",
                    "applied_at")
    list_filter = ("state", CauseFilter, ModeFilter, SellerIdFilter, "received_at")
    search_fields = ("delivery_id",)

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        return exact_search(queryset, search_term, text=("delivery_id",), numbers=("object_id",)), False
    search_help_text = "Exact delivery id or CardTrader order id."
    list_select_related = ("seller",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice
    # Newest first by id: ids are assigned at insert like received_at, and the primary key serves
    # the order (``-received_at`` plus Django's ``-pk`` tie-breaker had no index: a sort of the
    # whole inbox per page, 125 ms at 100,000 deliveries). The date filter still uses received_at.
    ordering = ("-pk",)
    actions = ("reapply_selected",)
    exclude = ("payload",)
    readonly_fields = ("payload_view",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f for f in super().get_readonly_fields(request, obj) if f != "payload"]

    @admin.display(description="payload")
    def payload_view(self, obj: WebhookEvent) -> str:
        return pretty_json(obj.payload or {})

    @admin.action(description="Re-apply selected failed deliveries", permissions=("change",))
    def reapply_selected(self, request: HttpRequest, queryset: Any) -> None:
        rows, truncated = bounded(queryset.select_related(None).order_by("pk").only("pk", "state", "error"))
        done, skipped = 0, Counter[str]()
        for event in rows:
            try:
                webhook_reapply(event_id=event.pk)
            except WebhookNotFailed as exc:
                skipped[f"{exc.event.state} (only failed deliveries are re-applied)"] += 1
                continue
            done += 1
            self.log(request, event, f"re-applied via the staff console; previous error: {event.error[:300]}")
        self.report(request, "re-applied", done, skipped, truncated=truncated)
        if done and not auto_apply_enabled():
            self.message_user(request, "The webhook_auto_apply feature flag is off: the deliveries are back to "
                                       "'received' and will be applied once it is on again.", messages.WARNING)


@admin.register(OrderLedger)
class OrderLedgerAdmin(ReadOnlyRecordAdmin):
    list_display = ("order_id", "order_item_id", "product_id", "seller", "quantity", "decremented", "oversold",
                    "restored", "last_order_state", "updated_at")
    list_filter = (SellerIdFilter,)
    search_fields = ("order_id",)

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        return exact_search(queryset, search_term, numbers=("order_id", "product_id")), False
    list_select_related = ("seller",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice


class OpenFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return (("yes", "Open"), ("no", "Resolved"))

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Conflict)
class ConflictAdmin(ReadOnlyRecordAdmin):
    list_display = ("id", "kind", "seller", "product_id", "order_id", "created_at", "resolved_at")
    list_filter = (OpenFilter, "kind", SellerIdFilter)
    search_fields = ("product_id",)

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        return exact_search(queryset, search_term, numbers=("product_id", "order_id")), False
    list_select_related = ("seller",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice
    exclude = ("details",)
    readonly_fields = ("details_view",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f for f in super().get_readonly_fields(request, obj) if f != "details"]

    @admin.display(description="details")
    def details_view(self, obj: Conflict) -> str:
        return pretty_json(obj.details or {})


# ------------------------------------------------------------------------ schedules

admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    """django-celery-beat's admin, with each task's description (what ours do) in the list.

    Descriptions of our schedules come from ``brxsync/schedules.py`` via ``setup_periodic_tasks``;
    staff may change intervals and the enabled flag, which that command keeps.
    """

    list_display = ("name", "enabled", "interval", "description_short", "last_run_at", "total_run_count")

    @admin.display(description="what it does")
    def description_short(self, obj: PeriodicTask) -> str:
        return (obj.description or "")[:160]
