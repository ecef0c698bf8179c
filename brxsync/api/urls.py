"""``/api/v1/`` routes, the OpenAPI schema and the docs (served from the sidecar: no internet).

Features add their routes to ``v1_patterns`` here (one line each), so every endpoint lives
under the same prefix and shows up in the schema.
"""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from inventory.apis.status import SellerStatusApi
from syncops.apis.connection import SellerConnectionApi
from syncops.apis.imports import SellerImportsApi, SellerReconciliationsApi
from syncops.apis.operations import OperationDetailApi, OperationRetryApi, SellerOperationListApi

v1_patterns = [
    path("sellers/<uuid:seller_uuid>/status", SellerStatusApi.as_view(), name="seller-status"),
    path("sellers/<uuid:seller_uuid>/operations", SellerOperationListApi.as_view(), name="seller-operations"),
    path("sellers/<uuid:seller_uuid>/connection", SellerConnectionApi.as_view(), name="seller-connection"),
    path("sellers/<uuid:seller_uuid>/imports", SellerImportsApi.as_view(), name="seller-imports"),
    path("sellers/<uuid:seller_uuid>/reconciliations", SellerReconciliationsApi.as_view(),
         name="seller-reconciliations"),
    path("operations/<int:operation_id>", OperationDetailApi.as_view(), name="operation-detail"),
    path("operations/<int:operation_id>/retry", OperationRetryApi.as_view(), name="operation-retry"),
    path("", include("inventory.apis.urls")),
    path("admin/", include("inventory.apis.admin_urls")),
]

urlpatterns = [
    path("v1/", include((v1_patterns, "api"), namespace="v1")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
