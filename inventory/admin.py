"""Admin for sellers and stock. Secrets are never shown: only the connection state."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from inventory.models import InventoryItem, SyncSettings, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "id", "email", "is_staff", "is_active", "date_joined")
    search_fields = ("username", "email", "=id")


class MappedFilter(admin.SimpleListFilter):
    title = "catalogue mapping"
    parameter_name = "mapped"

    def lookups(self, request, model_admin):
        return (("yes", "Mapped"), ("no", "Unmapped"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(print_id__isnull=False)
        if self.value() == "no":
            return queryset.filter(print_id__isnull=True)
        return queryset


@admin.register(SyncSettings)
class SyncSettingsAdmin(admin.ModelAdmin):
    list_display = ("user", "connection_state", "sync_status", "paused", "last_sync_at", "short_error")
    list_filter = ("connection_state", "sync_status", "paused")
    search_fields = ("=user__id", "user__username", "=cardtrader_user_id")
    list_select_related = ("user",)
    show_full_result_count = False
    readonly_fields = (
        "user", "connection_state", "cardtrader_app_id", "cardtrader_app_name", "cardtrader_user_id",
        "webhook_url", "sync_status", "last_sync_at", "last_error", "lease_owner", "lease_expires_at",
        "connected_at", "created_at", "updated_at",
    )
    fields = (*readonly_fields, "paused", "batch_size", "reserved_share")

    @admin.display(description="last error")
    def short_error(self, obj: SyncSettings) -> str:
        return (obj.last_error or "")[:80]

    def has_add_permission(self, request) -> bool:
        return False  # sellers are created by their first API call or connect


@admin.register(InventoryItem)
class InventoryItemAdmin(admin.ModelAdmin):
    list_display = ("product_id", "name", "seller", "blueprint_id", "quantity", "price_cents", "currency",
                    "sync_state", "print_id", "updated_at")
    list_filter = ("sync_state", MappedFilter, "graded", "currency")
    search_fields = ("=product_id", "=blueprint_id", "name")
    list_select_related = ("seller",)
    raw_id_fields = ("seller",)
    show_full_result_count = False
    readonly_fields = ("product_id", "blueprint_id", "print_id", "print_table", "version", "last_synced_at",
                       "created_at", "updated_at")
