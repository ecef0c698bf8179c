"""Writes for the inventory app, one module per concern; the public names are re-exported here."""
from inventory.services.secrets import RotationReport, secrets_rotate
from inventory.services.stats import inventory_stats_refresh

__all__ = ["RotationReport", "inventory_stats_refresh", "secrets_rotate"]
