"""Create (once) the staff login for a local run and print it.

The password is random per machine and kept in var/local-staff.txt so it survives restarts;
it is never a fixed default that could leak into a real deployment.
"""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from inventory.models import User


class Command(BaseCommand):
    help = "Create the local staff login (admin) and print it; used by `make run`."

    def handle(self, *args: Any, **options: Any) -> None:
        store = Path(settings.VAR_DIR) / "local-staff.txt"
        store.parent.mkdir(exist_ok=True)
        if store.exists() and User.objects.filter(username="admin").exists():
            password = store.read_text().strip()
        else:
            password = secrets.token_urlsafe(12)
            user, _ = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            store.write_text(password + "\n")
            store.chmod(0o600)
        self.stdout.write(f"[brxsync] staff login: admin / {password}")
