"""Thin Celery tasks for the inventory app."""
from celery import shared_task

from inventory import services


@shared_task(name="inventory.tasks.refresh_inventory_stats", ignore_result=True)
def refresh_inventory_stats() -> None:
    services.inventory_stats_refresh()
