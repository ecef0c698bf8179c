"""Who may call the API as a service (``ApiKey``) and what was already answered (``IdempotencyRecord``)."""
from __future__ import annotations

import hashlib
import secrets
import uuid

from django.db import models
from django.utils import timezone

API_KEY_PREFIX_LENGTH = 8


def hash_api_key(raw_key: str) -> str:
    """SHA-256 of the whole key, hex.

    A plain fast hash is right here, unlike for passwords: every key is 256 bits from
    ``secrets`` (never chosen by a person), so there is no dictionary to try and a slow KDF
    (PBKDF2, bcrypt) would only add ~100 ms to every service request without making a
    brute-force of 2^256 any less hopeless. Lookup is by this digest (unique index), so the
    database never compares secrets character by character.
    """
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


class ApiKey(models.Model):
    """A service credential: ``Authorization: Api-Key <key>`` may act for any seller.

    Only the digest is stored; the key itself is shown once by ``create_api_key``. The short
    ``prefix`` (the key's first characters, not secret on its own) lets staff tell keys apart
    in the admin and in logs. Revoking keeps the row for the audit trail.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, help_text="Which service uses this key")
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.name} ({self.prefix}…, {state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def new_secret() -> str:
        return "brx_" + secrets.token_urlsafe(32)

    def set_key(self, raw_key: str) -> None:
        self.prefix = raw_key[: 4 + API_KEY_PREFIX_LENGTH]
        self.hashed_key = hash_api_key(raw_key)

    @classmethod
    def generate(cls, name: str) -> tuple[ApiKey, str]:
        """Create a key; return the row and the raw key, which exists only in this return value."""
        raw_key = cls.new_secret()
        api_key = cls(name=name)
        api_key.set_key(raw_key)
        api_key.save()
        return api_key, raw_key

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


class IdempotencyState(models.TextChoices):
    STARTED = "started", "Started (in progress, or crashed before answering)"
    COMPLETED = "completed", "Completed (answer stored)"


class IdempotencyRecord(models.Model):
    """One ``Idempotency-Key`` of one caller, and the answer given to it.

    The row is committed in state ``started`` *before* the view runs (so a concurrent duplicate
    sees it and gets a 409), and turned ``completed`` with the response inside the same
    transaction as the view's own writes, so "acted" and "answer stored" commit together or not
    at all. A ``started`` row older than ``IDEMPOTENCY_LOCK_SECONDS`` belongs to a crashed
    request whose writes were rolled back, and may be taken over.
    """

    caller = models.CharField(max_length=64, help_text="seller:<uuid> or apikey:<uuid>")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    state = models.CharField(max_length=16, choices=IdempotencyState.choices, default=IdempotencyState.STARTED)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    locked_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["caller", "key"], name="idempotency_unique_caller_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.caller} {self.key} ({self.state})"
