"""The project's URLs plus the test-only probe views and the web metrics view."""
from django.urls import path

from brxsync.metrics import metrics_view
from brxsync.urls import urlpatterns as project_urlpatterns
from tests.observability import probe

urlpatterns = [
    path("obs/enqueue/<str:seller_uuid>/", probe.enqueue_view, name="obs-enqueue"),
    path("obs/slow/", probe.slow_view, name="obs-slow"),
    path("obs/careless/", probe.careless_view, name="obs-careless"),
    path("obs/metrics", metrics_view, name="obs-metrics"),
    *project_urlpatterns,
]
