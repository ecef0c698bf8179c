"""Secrets at rest: key rotation over every stored CardTrader credential."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from inventory import crypto
from inventory.models import SyncSettings


@dataclass
class RotationReport:
    rotated: int = 0
    failed: list[str] = field(default_factory=list)


def secrets_rotate(*, batch_size: int = 500) -> RotationReport:
    """Re-encrypt all stored secrets with the current first key.

    Each batch runs in its own transaction with ``SELECT ... FOR UPDATE`` so a concurrent
    connect either waits or is re-encrypted afterwards; nothing is lost or half-written.
    """
    report = RotationReport()
    last_pk = None
    while True:
        with transaction.atomic():
            qs = SyncSettings.objects.select_for_update().order_by("pk").exclude(token_encrypted="")
            if last_pk is not None:
                qs = qs.filter(pk__gt=last_pk)
            batch = list(qs[:batch_size])
            if not batch:
                return report
            for row in batch:
                last_pk = row.pk
                try:
                    row.token_encrypted = crypto.rotate(row.token_encrypted)
                    if row.shared_secret_encrypted:
                        row.shared_secret_encrypted = crypto.rotate(row.shared_secret_encrypted)
                except crypto.SecretDecryptionError:
                    report.failed.append(str(row.pk))
                    continue
                row.save(update_fields=["token_encrypted", "shared_secret_encrypted", "updated_at"])
                report.rotated += 1
