"""Re-encrypt every stored CardTrader secret with the first key of FERNET_KEYS.

Run after prepending a new key; once it reports zero failures the old key can be removed.
Rows are processed in batches under row locks, so a connect running meanwhile is not lost.
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from inventory.services import secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored CardTrader token and shared secret with the first FERNET_KEYS key."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        report = secrets_rotate(batch_size=options["batch_size"])
        self.stdout.write(f"re-encrypted {report.rotated} row(s); {len(report.failed)} could not be decrypted")
        if report.failed:
            raise CommandError(f"undecryptable rows (seller ids): {', '.join(report.failed[:20])}")
