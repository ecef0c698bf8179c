"""Staff console for sellers (sync settings) and stock.

Secrets are never shown: the token fields are not editable and no view renders them; a new token
goes through ``connection_connect`` (validated with CardTrader first, exactly like the API). Every
action calls the service the API calls and writes an admin log entry. An item edited here goes
through ``inventory.services.edits.item_edit``, so it queues the same push operation as a PATCH.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from inventory.models import InventoryItem, ItemSyncState, SyncSettings, User
from inventory.selectors.names import items_named
from inventory.services.caches import caches_clear
from inventory.services.edits import EDITABLE_FIELDS, EditError, item_delete, item_edit, validate_changes
from syncops.admin_support import ConsoleAdminMixin, SellerIdFilter, actor, bounded, pretty_json
from syncops.models import Conflict


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "id", "email", "is_staff", "is_active", "date_joined")
    search_fields = ("username", "email", "=id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice


# ------------------------------------------------------------------------ sellers

class TokenForm(forms.Form):
    cardtrader_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False), max_length=4096, strip=True,
        help_text="Validated with CardTrader (GET /info) before anything is stored; never shown again.",
    )


@admin.register(SyncSettings)
class SyncSettingsAdmin(ConsoleAdminMixin, admin.ModelAdmin):
    list_display = ("user", "sync_status", "connection_state", "paused", "last_sync_at", "short_error", "items",
                    "open_conflicts")
    list_filter = ("sync_status", "connection_state", "paused")
    search_fields = ("=user__id", "user__username", "=cardtrader_user_id")
    search_help_text = "Seller UUID, username, or CardTrader user id."
    list_select_related = ("user",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice
    ordering = ("-updated_at",)
    actions = ("start_import", "reconcile_dry_run", "reconcile_apply", "pause", "resume", "reset_breaker",
               "disconnect", "clear_caches")
    readonly_fields = (
        "user", "connection_state", "cardtrader_app_id", "cardtrader_app_name", "cardtrader_user_id",
        "webhook_url", "sync_status", "paused", "last_sync_at", "last_error", "lease_owner", "lease_expires_at",
        "connected_at", "created_at", "updated_at", "stock_summary", "rate_limit_state", "recent_operations",
    )
    fieldsets = (
        ("Connection", {"fields": ("user", "connection_state", "webhook_url", "cardtrader_user_id",
                                   "cardtrader_app_id", "cardtrader_app_name", "connected_at")}),
        ("Sync", {"fields": ("sync_status", "paused", "last_sync_at", "last_error", "lease_owner",
                             "lease_expires_at", "stock_summary")}),
        ("Overrides", {"fields": ("batch_size", "reserved_share")}),
        ("Rate limit", {"fields": ("rate_limit_state",)}),
        ("Recent operations", {"fields": ("recent_operations",)}),
        (None, {"fields": ("created_at", "updated_at")}),
    )
    change_form_template = "admin/inventory/syncsettings/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # sellers are created by connecting (API or the token form)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # disconnect instead: stock and history stay

    def get_queryset(self, request: HttpRequest) -> Any:
        # Per-row figures as correlated subqueries: PostgreSQL evaluates them for the page's rows
        # only. Item counts come from the materialized view (refreshed every 5 minutes), never a
        # COUNT(*) over a seller's 250,000 items per row.
        open_conflicts = (
            Conflict.objects.filter(seller_id=OuterRef("user_id"), resolved_at__isnull=True)
            .order_by().values("seller_id").annotate(n=Count("pk")).values("n")
        )
        return super().get_queryset(request).annotate(
            items_count=RawSQL(
                "SELECT s.total_items FROM mv_user_inventory_stats s "
                "WHERE s.seller_id = inventory_syncsettings.user_id",
                (),
            ),
            open_conflicts_count=Coalesce(Subquery(open_conflicts, output_field=IntegerField()), 0),
        )

    @admin.display(description="last error")
    def short_error(self, obj: SyncSettings) -> str:
        return (obj.last_error or "")[:80]

    @admin.display(description="items (≤5 min old)")
    def items(self, obj: SyncSettings) -> Any:
        value = getattr(obj, "items_count", None)
        return "—" if value is None else value

    @admin.display(description="open conflicts")
    def open_conflicts(self, obj: SyncSettings) -> int:
        return getattr(obj, "open_conflicts_count", 0)

    @admin.display(description="stock")
    def stock_summary(self, obj: SyncSettings) -> str:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT total_items, total_quantity, unmapped_items, refreshed_at FROM mv_user_inventory_stats "
                "WHERE seller_id = %s", [obj.user_id],
            )
            row = cursor.fetchone()
        if row is None:
            return "no stats yet (the view is refreshed every 5 minutes)"
        return f"{row[0]} items, {row[1]} cards, {row[2]} unmapped (as of {row[3]:%Y-%m-%d %H:%M} UTC)"

    @admin.display(description="rate limiter")
    def rate_limit_state(self, obj: SyncSettings) -> str:
        from inventory.selectors.sellers import rate_limit_summary

        summary = rate_limit_summary(obj.user_id)
        return pretty_json(summary) if summary is not None else "unavailable (limiter unreachable)"

    @admin.display(description="recent operations")
    def recent_operations(self, obj: SyncSettings) -> str:
        from syncops.selectors.operations import operation_list

        ops = operation_list(seller_id=obj.user_id)[:20]
        if not ops:
            return "none"
        rows = format_html_join(
            "", '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            ((reverse("admin:syncops_syncoperation_change", args=[op.pk]), op.pk, op.kind, op.state,
              op.created_at.strftime("%Y-%m-%d %H:%M:%S"), (op.error_code or op.last_error or "")[:80])
             for op in ops),
        )
        more = reverse("admin:syncops_syncoperation_changelist") + f"?seller={obj.user_id}"
        return format_html('<table class="brx-ops"><tr><th>id</th><th>kind</th><th>state</th><th>created</th>'
                           '<th>error</th></tr>{}</table><p><a href="{}">all operations of this seller</a></p>',
                           rows, more)

    def save_model(self, request: HttpRequest, obj: SyncSettings, form: Any, change: bool) -> None:
        # Only the overrides are editable here; the limiter re-reads them once its cache is dropped.
        super().save_model(request, obj, form, change)
        caches_clear(seller_id=obj.user_id)

    # --------------------------------------------------------------- actions

    def _each_seller(self, request: HttpRequest, queryset: Any, verb: str,
                     call: Callable[[SyncSettings], str | None]) -> None:
        """Run ``call`` per selected seller; it returns a refusal reason, or None when it acted."""
        rows, truncated = bounded(queryset.select_related("user").order_by("pk"))
        done, skipped = 0, Counter[str]()
        for sync in rows:
            reason = call(sync)
            if reason:
                skipped[reason] += 1
                continue
            done += 1
            self.log(request, sync, f"{verb} via the staff console")
        self.report(request, verb, done, skipped, truncated=truncated)

    def _start(self, request: HttpRequest, queryset: Any, verb: str, starter: Callable[..., Any]) -> None:
        from syncops.services.sync_runs import SyncBusy, SyncStartRefused

        who = actor(request)

        def call(sync: SyncSettings) -> str | None:
            try:
                starter(seller=sync.user, actor=who)
            except SyncBusy as exc:
                return f"busy ({exc.message})"
            except SyncStartRefused as exc:
                return exc.code
            return None

        self._each_seller(request, queryset, verb, call)

    @admin.action(description="Start import", permissions=("change",))
    def start_import(self, request: HttpRequest, queryset: Any) -> None:
        from syncops.services.imports import import_start

        self._start(request, queryset, "import started", import_start)

    @admin.action(description="Reconcile (dry run: report only)", permissions=("change",))
    def reconcile_dry_run(self, request: HttpRequest, queryset: Any) -> None:
        from syncops.services.reconcile import reconcile_start

        self._start(request, queryset, "dry-run reconcile started",
                    lambda **kw: reconcile_start(dry_run=True, **kw))

    @admin.action(description="Reconcile and apply", permissions=("change",))
    def reconcile_apply(self, request: HttpRequest, queryset: Any) -> None:
        from syncops.services.reconcile import reconcile_start

        self._start(request, queryset, "reconcile started", lambda **kw: reconcile_start(dry_run=False, **kw))

    def _set_paused(self, request: HttpRequest, queryset: Any, paused: bool) -> None:
        from syncops.services.connection import connection_set_paused

        def call(sync: SyncSettings) -> str | None:
            if sync.paused == paused:
                return "already paused" if paused else "not paused"
            connection_set_paused(seller_id=sync.user_id, paused=paused)
            return None

        self._each_seller(request, queryset, "paused" if paused else "resumed", call)

    @admin.action(description="Pause (hold every outgoing change)", permissions=("change",))
    def pause(self, request: HttpRequest, queryset: Any) -> None:
        self._set_paused(request, queryset, True)

    @admin.action(description="Resume", permissions=("change",))
    def resume(self, request: HttpRequest, queryset: Any) -> None:
        self._set_paused(request, queryset, False)

    @admin.action(description="Reset circuit breaker and rate-limit bucket", permissions=("change",))
    def reset_breaker(self, request: HttpRequest, queryset: Any) -> None:
        from ratelimit.services import reset_breaker, reset_bucket

        def call(sync: SyncSettings) -> str | None:
            try:
                reset_breaker(str(sync.user_id))
                reset_bucket(str(sync.user_id))
            except Exception as exc:  # Redis down: say so instead of a 500
                return f"limiter unavailable ({type(exc).__name__})"
            return None

        self._each_seller(request, queryset, "breaker reset", call)

    @admin.action(description="Disconnect from CardTrader (wipe the token, keep the stock)", permissions=("change",))
    def disconnect(self, request: HttpRequest, queryset: Any) -> None:
        from syncops.services.connection import connection_disconnect

        def call(sync: SyncSettings) -> str | None:
            if not sync.token_encrypted and sync.connection_state == "disconnected":
                return "not connected"
            connection_disconnect(seller_id=sync.user_id)
            return None

        self._each_seller(request, queryset, "disconnected", call)

    @admin.action(description="Clear blueprint-mapping and settings caches", permissions=("change",))
    def clear_caches(self, request: HttpRequest, queryset: Any) -> None:
        def call(sync: SyncSettings) -> str | None:
            caches_clear(seller_id=sync.user_id)
            return None

        self._each_seller(request, queryset, "caches cleared", call)

    # --------------------------------------------------------------- token and buttons

    def get_urls(self) -> list[Any]:
        extra = [
            path("<path:object_id>/token/", self.admin_site.admin_view(self.token_view),
                 name="inventory_syncsettings_token"),
            path("clear-all-caches/", self.admin_site.admin_view(self.clear_all_caches_view),
                 name="inventory_syncsettings_clear_all_caches"),
        ]
        return extra + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> Any:
        extra = dict(extra_context or {})
        obj = self.get_object(request, object_id)
        if obj is not None and self.has_change_permission(request, obj):
            extra["console_actions"] = [
                (name, self.get_actions(request)[name][2]) for name in self.actions if name in self.get_actions(request)
            ]
            extra["token_url"] = reverse("admin:inventory_syncsettings_token", args=[obj.pk])
        return super().change_view(request, object_id, form_url, extra)

    def response_action(self, request: HttpRequest, queryset: Any) -> Any:
        """A button on a seller's page posts the changelist action; come back to that page."""
        response = super().response_action(request, queryset)
        back = request.POST.get("_back_to_change")
        if isinstance(response, HttpResponseRedirect) and back:
            obj = self.get_object(request, back)
            if obj is not None:
                return HttpResponseRedirect(reverse("admin:inventory_syncsettings_change", args=[obj.pk]))
        return response

    def token_view(self, request: HttpRequest, object_id: str) -> Any:
        """Replace a seller's CardTrader token through the API's connect service (validated first)."""
        from syncops.services.connection import ConnectionRefused, connection_connect

        obj = self.get_object(request, object_id)
        if obj is None:
            return HttpResponseRedirect(reverse("admin:inventory_syncsettings_changelist"))
        self.require_change(request, obj)
        form = TokenForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = connection_connect(seller_id=obj.user_id, token=form.cleaned_data["cardtrader_token"])
            except ConnectionRefused as exc:
                form.add_error("cardtrader_token", exc.message)
            else:
                self.log(request, obj, f"CardTrader token replaced (CardTrader user {result.cardtrader_user_id})")
                self.message_user(request, "Token validated by CardTrader and stored.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:inventory_syncsettings_change", args=[obj.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.opts, "original": obj, "form": form,
                   "title": "Replace CardTrader token"}
        return TemplateResponse(request, "admin/inventory/syncsettings/token.html", context)

    def clear_all_caches_view(self, request: HttpRequest) -> Any:
        """Clear the caches for every seller (the action clears them for the selected ones)."""
        self.require_change(request)
        if request.method != "POST":
            raise PermissionDenied("POST only")
        result = caches_clear()
        from django.contrib.admin.models import CHANGE, LogEntry
        from django.contrib.contenttypes.models import ContentType

        LogEntry.objects.create(
            user_id=request.user.pk, content_type=ContentType.objects.get_for_model(SyncSettings),
            object_id="", object_repr="all sellers", action_flag=CHANGE,
            change_message=f"all caches cleared ({result.blueprint_keys} blueprint mappings)",
        )
        self.message_user(request, f"Caches cleared for every seller ({result.blueprint_keys} mappings dropped).")
        return HttpResponseRedirect(reverse("admin:inventory_syncsettings_changelist"))


# ------------------------------------------------------------------------ stock

class MappedFilter(admin.SimpleListFilter):
    title = "catalogue mapping"
    parameter_name = "mapped"

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return (("yes", "Mapped"), ("no", "Unmapped"))

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "yes":
            return queryset.filter(print_id__isnull=False)
        if self.value() == "no":
            return queryset.filter(print_id__isnull=True)
        return queryset


class SyncStateFilter(admin.SimpleListFilter):
    """The states staff look for: waiting to be pushed, in conflict, unmapped, gone from CardTrader."""

    title = "sync state"
    parameter_name = "sync"

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return (("pending", "Pending (push or delete)"), ("conflict", "Conflict"), ("unmapped", "Unmapped"),
                ("removed", "Removed on CardTrader"), ("in_sync", "In sync"))

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        if value == "pending":
            return queryset.filter(sync_state__in=(ItemSyncState.PENDING_PUSH, ItemSyncState.PENDING_DELETE))
        if value == "conflict":
            return queryset.filter(sync_state=ItemSyncState.CONFLICT)
        if value == "unmapped":
            return queryset.filter(print_id__isnull=True)
        if value == "removed":
            return queryset.filter(sync_state=ItemSyncState.REMOVED_REMOTE)
        if value == "in_sync":
            return queryset.filter(sync_state=ItemSyncState.IN_SYNC)
        return queryset


class InventoryItemForm(forms.ModelForm):
    """Validates an edit exactly as the API does (``validate_changes``) before the service runs."""

    class Meta:
        model = InventoryItem
        fields = list(EDITABLE_FIELDS)

    def changes(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.changed_data if name in EDITABLE_FIELDS}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        changes = self.changes()
        if changes and self.instance.pk:
            try:
                validate_changes(changes, item=self.instance)
            except EditError as exc:
                details = exc.details if isinstance(exc.details, dict) else {}
                for name, errs in details.items():
                    self.add_error(name if name in self.fields else None, "; ".join(map(str, errs)))
                if not details:
                    raise forms.ValidationError(exc.message) from None
        return cleaned

    def _post_clean(self) -> None:
        # The service writes the row; skip the ModelForm's copy onto the instance so nothing but
        # ``item_edit`` ever changes a tracked field.
        pass


@admin.register(InventoryItem)
class InventoryItemAdmin(ConsoleAdminMixin, admin.ModelAdmin):
    form = InventoryItemForm
    list_display = ("product_id", "name", "seller", "blueprint_id", "quantity", "price_cents", "currency",
                    "sync_state", "mapped", "updated_at")
    list_filter = (SyncStateFilter, MappedFilter, "graded", SellerIdFilter)
    search_fields = ("name",)
    search_help_text = "A number matches a product id or blueprint id exactly; text matches the name."
    list_select_related = ("seller",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice
    actions = ("delete_on_cardtrader",)
    readonly_fields = ("seller", "product_id", "blueprint_id", "name", "print_id", "print_table", "game_id",
                       "category_id", "expansion_id", "currency", "sync_state", "version", "last_synced_at",
                       "created_at", "updated_at", "recent_operations")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # items come from CardTrader (import) or the API

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting goes through CardTrader first: the "delete on CardTrader" action

    @admin.display(description="mapped", boolean=True)
    def mapped(self, obj: InventoryItem) -> bool:
        return obj.print_id is not None

    @admin.display(description="operations")
    def recent_operations(self, obj: InventoryItem) -> str:
        ops = obj.operations.order_by("-created_at")[:10]
        return format_html_join(
            mark_safe("<br>"), '<a href="{}">#{} {} {}</a>',
            ((reverse("admin:syncops_syncoperation_change", args=[op.pk]), op.pk, op.kind, op.state) for op in ops),
        ) or "none"

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        term = search_term.strip()
        if term.isdigit():
            value = int(term)
            if value < 2**63:
                return queryset.filter(Q(product_id=value) | Q(blueprint_id=value)), False
            return queryset.none(), False
        if not term:
            return queryset, False
        # Through the per-blueprint name table: the stock table has no name index (docs/IMPORT.md).
        return items_named(queryset, search_term), False

    def save_model(self, request: HttpRequest, obj: InventoryItem, form: Any, change: bool) -> None:
        changes = form.changes()
        if not changes:
            return
        try:
            op = item_edit(seller=obj.seller, item_id=obj.pk, changes=changes)
        except EditError as exc:  # e.g. the item went pending_delete between form and save
            raise PermissionDenied(exc.message) from exc
        obj.refresh_from_db()
        self.message_user(request, f"Queued push operation #{op.pk} for product {obj.product_id}.")

    def construct_change_message(self, request: HttpRequest, form: Any, formsets: Any, add: bool = False) -> Any:
        message = super().construct_change_message(request, form, formsets, add)
        return message or "no change"

    @admin.action(description="Delete on CardTrader (item kept until CardTrader confirms)", permissions=("change",))
    def delete_on_cardtrader(self, request: HttpRequest, queryset: Any) -> None:
        rows, truncated = bounded(queryset.select_related("seller").order_by("pk"))
        done, skipped = 0, Counter[str]()
        for item in rows:
            try:
                item_delete(seller=item.seller, item_id=item.pk)
            except EditError as exc:
                skipped[exc.code] += 1
                continue
            done += 1
            self.log(request, item, "delete on CardTrader queued via the staff console")
        self.report(request, "queued for deletion", done, skipped, truncated=truncated)
