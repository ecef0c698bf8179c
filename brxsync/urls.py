"""Top-level URLs: admin, health, metrics, API."""
from django.contrib import admin
from django.urls import include, path

from brxsync import health, metrics
from syncops.apis.webhooks import cardtrader_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("api/v1/webhooks/cardtrader/<str:webhook_id>/", cardtrader_webhook, name="cardtrader-webhook"),
    # Every process's counters (multiprocess mode) plus queue depths and operations at scrape time.
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/", include("brxsync.api.urls")),
]

# Every error is the JSON envelope, never Django's HTML pages (brxsync/api/exceptions.py).
handler400 = "brxsync.api.exceptions.bad_request"
handler403 = "brxsync.api.exceptions.permission_denied"
handler404 = "brxsync.api.exceptions.page_not_found"
handler500 = "brxsync.api.exceptions.server_error"
