"""Admin for operations, webhook deliveries, the order ledger and conflicts."""
from __future__ import annotations

from django.contrib import admin

from syncops.models import Conflict, OrderLedger, SyncOperation, WebhookEvent


@admin.register(SyncOperation)
class SyncOperationAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "state", "seller", "product_id", "attempts", "progress_done", "progress_total",
                    "created_at", "finished_at")
    list_filter = ("state", "kind", "created_at")
    search_fields = ("=operation_key", "=cardtrader_job_uuid", "=product_id")
    list_select_related = ("seller",)
    raw_id_fields = ("seller", "item")
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = ("operation_key", "created_at", "updated_at", "dispatched_at", "started_at",
                       "heartbeat_at", "finished_at", "attempt_log", "result")


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("delivery_id", "cause", "object_id", "mode", "state", "seller", "received_at", "applied_at")
    list_filter = ("state", "cause", "mode")
    search_fields = ("=delivery_id", "=object_id")
    list_select_related = ("seller",)
    raw_id_fields = ("seller",)
    show_full_result_count = False
    readonly_fields = ("delivery_id", "payload", "received_at", "applied_at", "sent_at")


@admin.register(OrderLedger)
class OrderLedgerAdmin(admin.ModelAdmin):
    list_display = ("order_id", "order_item_id", "product_id", "seller", "quantity", "decremented", "oversold",
                    "restored", "last_order_state", "updated_at")
    search_fields = ("=order_id", "=product_id")
    list_select_related = ("seller",)
    raw_id_fields = ("seller", "item")
    show_full_result_count = False


@admin.register(Conflict)
class ConflictAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "seller", "product_id", "order_id", "created_at", "resolved_at")
    list_filter = ("kind", "resolved_at")
    search_fields = ("=product_id", "=order_id")
    list_select_related = ("seller",)
    raw_id_fields = ("seller", "item")
    show_full_result_count = False
