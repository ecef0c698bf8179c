"""Inventory URLs, included under ``/api/v1/`` by the API url module."""
from django.urls import path

from inventory.apis import items

urlpatterns = [
    path("sellers/<uuid:seller_uuid>/inventory", items.InventoryListApi.as_view(), name="inventory-list"),
    path("sellers/<uuid:seller_uuid>/inventory/batch", items.InventoryBatchApi.as_view(), name="inventory-batch"),
    path("sellers/<uuid:seller_uuid>/inventory/<int:item_id>", items.InventoryItemApi.as_view(),
         name="inventory-item"),
    path("sellers/<uuid:seller_uuid>/inventory/<int:item_id>/adjust", items.InventoryAdjustApi.as_view(),
         name="inventory-adjust"),
]
