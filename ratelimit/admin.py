"""Admin status page: per seller tokens left, adaptive factor, 429s and rate-limit waits in the
last hour, breaker state; the shared breaker and stuck breakers on top. Resets go through ``ratelimit.services``,
the same functions the API calls."""
from __future__ import annotations

import time

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from . import get_default_guard, selectors, services
from .buckets import SHARED_TAG
from .models import SellerRateLimit

UNKNOWN = "—"


@admin.register(SellerRateLimit)
class SellerRateLimitAdmin(admin.ModelAdmin):
    list_display = ("user", "sync_status", "tokens_left", "factor", "rate_limited_last_hour", "waits_last_hour",
                    "breaker")
    search_fields = ("user__username", "user__id")
    list_filter = ("sync_status",)
    actions = ("reset_breakers", "reset_buckets")
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    # One status script call per row on the page, done once before the rows render.
    def get_changelist_instance(self, request: HttpRequest):
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        try:
            statuses = selectors.sellers_status([str(row.user_id) for row in rows])
        except services.UNAVAILABLE_ERRORS as exc:
            messages.error(request, f"Redis unreachable, limiter status unavailable: {exc}")
            statuses = {}
        for row in rows:
            row.limiter_status = statuses.get(str(row.user_id))
        return changelist

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra = dict(extra_context or {})
        try:
            config = get_default_guard().breakers
            now = time.time()
            extra["shared_breaker"] = selectors.shared_breaker_status()
            extra["not_closed_breakers"] = [
                {"name": b.name, "state": b.state.label, "minutes": (now - b.since) / 60, "stuck": b.stuck(config, now)}
                for b in selectors.breakers_not_closed()
            ]
            extra["stuck_after_minutes"] = config.stuck_after_seconds / 60
            extra["can_reset"] = self.has_change_permission(request)
        except services.UNAVAILABLE_ERRORS:
            extra["limiter_unavailable"] = True
        return super().changelist_view(request, extra_context=extra)

    @admin.display(description="tokens left")
    def tokens_left(self, obj) -> str:
        status = getattr(obj, "limiter_status", None)
        return UNKNOWN if status is None else f"{status.tokens:.1f} / {status.effective_capacity:.0f}"

    @admin.display(description="adaptive factor")
    def factor(self, obj) -> str:
        status = getattr(obj, "limiter_status", None)
        return UNKNOWN if status is None else f"{status.factor:.2f}"

    @admin.display(description="429s (1 h)")
    def rate_limited_last_hour(self, obj) -> str:
        status = getattr(obj, "limiter_status", None)
        return UNKNOWN if status is None else str(status.rate_limited_last_hour)

    @admin.display(description="waits (1 h)")
    def waits_last_hour(self, obj) -> str:
        status = getattr(obj, "limiter_status", None)
        return UNKNOWN if status is None else str(status.waits_last_hour)

    @admin.display(description="breaker")
    def breaker(self, obj) -> str:
        status = getattr(obj, "limiter_status", None)
        return UNKNOWN if status is None else status.breaker.state.label

    @admin.action(description="Reset circuit breaker of selected sellers", permissions=["change"])
    def reset_breakers(self, request: HttpRequest, queryset) -> None:
        self._each(request, queryset, services.reset_breaker, "breaker reset")

    @admin.action(description="Reset rate-limit bucket and factor of selected sellers", permissions=["change"])
    def reset_buckets(self, request: HttpRequest, queryset) -> None:
        self._each(request, queryset, services.reset_bucket, "bucket reset")

    def _each(self, request, queryset, service, what: str) -> None:
        done = 0
        try:
            for seller_id in queryset.values_list("user_id", flat=True):
                service(str(seller_id))
                done += 1
        except services.UNAVAILABLE_ERRORS as exc:
            messages.error(request, f"Redis unreachable after {done} {what}(s): {exc}")
            return
        messages.success(request, f"{what}: {done} seller(s)")

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.reset_shared_breaker_view))
        return [path("reset-shared-breaker/", view, name="ratelimit_reset_shared_breaker"), *super().get_urls()]

    def reset_shared_breaker_view(self, request: HttpRequest):
        if not self.has_change_permission(request):
            raise PermissionDenied
        try:
            services.reset_breaker(SHARED_TAG)
            messages.success(request, "Shared CardTrader breaker reset.")
        except services.UNAVAILABLE_ERRORS as exc:
            messages.error(request, f"Redis unreachable: {exc}")
        return HttpResponseRedirect(reverse("admin:ratelimit_sellerratelimit_changelist"))
