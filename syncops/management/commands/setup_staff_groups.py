"""Create or refresh the read-only staff group (idempotent)."""
from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand

from syncops.services.staff_groups import READONLY_GROUP, ensure_readonly_staff_group


class Command(BaseCommand):
    help = "Create/refresh the read-only staff group: view permissions on every console model, nothing else."

    def handle(self, *args: Any, **options: Any) -> None:
        count = ensure_readonly_staff_group(apps)
        self.stdout.write(f"{READONLY_GROUP}: {count} view permissions")
