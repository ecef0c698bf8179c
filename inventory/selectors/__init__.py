"""Reads for the inventory app, one module per concern; the public names are re-exported here."""
from inventory.selectors.sellers import SellerStatus, seller_get, seller_status

__all__ = ["SellerStatus", "seller_get", "seller_status"]
