"""Staff tooling endpoints for service API keys, included under ``/api/v1/admin/``."""
from django.urls import path

from inventory.apis.caches import CachesClearApi

urlpatterns = [
    path("caches/clear", CachesClearApi.as_view(), name="caches-clear"),
]
