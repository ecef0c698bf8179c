"""Top-level URLs: admin, health, metrics, API."""
from django.contrib import admin
from django.urls import include, path

from brxsync import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("", include("django_prometheus.urls")),
]
