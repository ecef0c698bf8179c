"""The seller and their stock.

Invariants live in the database (check and unique constraints), not only in Python, because
webhooks, imports and pushes write concurrently from many processes.
"""
from __future__ import annotations

import secrets
import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q

from inventory import crypto


class User(AbstractUser):
    """A seller (``id`` is Ebartex's JWT ``sub``) or a staff member."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    class Meta:
        db_table = "brx_user"


def _new_webhook_id() -> str:
    # 192 bits, URL-safe: a seller's webhook URL cannot be guessed from their UUID or enumerated.
    return secrets.token_urlsafe(24)


class SyncStatus(models.TextChoices):
    IDLE = "idle", "Idle"
    IMPORTING = "importing", "Importing"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ERROR = "error", "Error"


class ConnectionState(models.TextChoices):
    DISCONNECTED = "disconnected", "Not connected"
    CONNECTED = "connected", "Connected"
    TOKEN_INVALID = "token_invalid", "Token rejected by CardTrader"


class SyncSettings(models.Model):
    """One per seller: the CardTrader connection, status, lease and per-seller overrides."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="sync_settings")
    token_encrypted = models.TextField(blank=True, default="", editable=False)
    shared_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    connection_state = models.CharField(
        max_length=16, choices=ConnectionState.choices, default=ConnectionState.DISCONNECTED
    )
    cardtrader_app_id = models.BigIntegerField(null=True, blank=True)
    cardtrader_app_name = models.CharField(max_length=255, blank=True, default="")
    cardtrader_user_id = models.BigIntegerField(null=True, blank=True)
    webhook_id = models.CharField(max_length=64, unique=True, default=_new_webhook_id, editable=False)
    sync_status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.IDLE)
    paused = models.BooleanField(default=False, help_text="Hold every outgoing change until resumed.")
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    batch_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Items per bulk call; empty means PUSH_BATCH_SIZE."
    )
    reserved_share = models.FloatField(
        null=True, blank=True, help_text="Share of the rate budget kept for high-priority work (0-0.9)."
    )
    # The sync lease: one import/reconcile per seller; it expires so a dead worker never blocks.
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sync settings"
        verbose_name_plural = "sync settings"
        indexes = [models.Index(fields=["sync_status"], name="syncsettings_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(reserved_share__isnull=True) | Q(reserved_share__gte=0, reserved_share__lte=0.9),
                name="syncsettings_reserved_share_range",
            ),
        ]

    def __str__(self) -> str:
        return f"sync settings for {self.user_id}"

    # Secrets: set and read only through these, so plaintext never lands on a field.
    def set_credentials(self, *, token: str, shared_secret: str) -> None:
        self.token_encrypted = crypto.encrypt(token)
        self.shared_secret_encrypted = crypto.encrypt(shared_secret) if shared_secret else ""

    def clear_credentials(self) -> None:
        self.token_encrypted = ""
        self.shared_secret_encrypted = ""

    def get_token(self) -> str:
        return crypto.decrypt(self.token_encrypted) if self.token_encrypted else ""

    def get_shared_secret(self) -> str:
        return crypto.decrypt(self.shared_secret_encrypted) if self.shared_secret_encrypted else ""

    @property
    def is_connected(self) -> bool:
        return self.connection_state == ConnectionState.CONNECTED and bool(self.token_encrypted)

    @property
    def webhook_url(self) -> str:
        """The URL the seller pastes into CardTrader: built from the unguessable webhook id."""
        from django.conf import settings

        return f"{settings.PUBLIC_BASE_URL}/api/v1/webhooks/cardtrader/{self.webhook_id}/"


class ItemSyncState(models.TextChoices):
    IN_SYNC = "in_sync", "In sync"
    PENDING_PUSH = "pending_push", "Pending push"
    PENDING_DELETE = "pending_delete", "Pending delete"
    CONFLICT = "conflict", "Conflict"
    REMOVED_REMOTE = "removed_remote", "Removed on CardTrader"


class InventoryItem(models.Model):
    """One CardTrader product of one seller (``product_id`` is the natural key)."""

    # No database FK constraint: triggers check the seller per statement instead of per row (the RI
    # check was ~45 % of a big import's database CPU), locking the sellers as RI does, and refuse
    # deleting a referenced seller (migration 0006, docs/IMPORT.md "Foreign key to the seller").
    # The Django relation stays: joins, the admin and the CASCADE collector use it.
    seller = models.ForeignKey(User, on_delete=models.CASCADE, related_name="inventory_items", db_index=False,
                               db_constraint=False)
    product_id = models.BigIntegerField(help_text="CardTrader product id")
    blueprint_id = models.IntegerField(help_text="CardTrader blueprint id")
    print_id = models.BigIntegerField(null=True, blank=True, help_text="Ebartex print id (null: unmapped)")
    print_table = models.CharField(max_length=32, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    game_id = models.IntegerField(null=True, blank=True)
    category_id = models.IntegerField(null=True, blank=True)
    expansion_id = models.IntegerField(null=True, blank=True)
    quantity = models.IntegerField(default=0)
    price_cents = models.IntegerField(default=0)
    currency = models.CharField(max_length=3, default="EUR")
    properties = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True, default="")
    user_data_field = models.TextField(blank=True, default="")
    graded = models.BooleanField(default=False)
    sync_state = models.CharField(max_length=16, choices=ItemSyncState.choices, default=ItemSyncState.IN_SYNC)
    version = models.PositiveIntegerField(default=1, help_text="Bumped on every local change (optimistic lock)")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["seller", "product_id"], name="item_unique_seller_product"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="item_quantity_non_negative"),
            models.CheckConstraint(condition=Q(price_cents__gte=0), name="item_price_non_negative"),
        ]
        indexes = [
            # The seed's (user, blueprint, external stock id) columns, blueprint first: one index
            # serves both the seller + blueprint filter (API) and the staff search by blueprint
            # across sellers, which had a (blueprint_id) index of its own; one btree fewer to
            # maintain per imported row (docs/IMPORT.md, "Indexes"). A seller's reads without a
            # blueprint go through the unique (seller, product_id) key.
            models.Index(fields=["blueprint_id", "seller", "product_id"], name="item_bp_seller_product_idx"),
            # Partial: what reads them looks for items that are NOT in sync (pending pushes,
            # conflicts, removed on CardTrader), and an import of in-sync rows then maintains
            # neither (docs/IMPORT.md). An in-sync listing reads the (seller, product_id) key.
            models.Index(fields=["seller", "sync_state"], condition=~Q(sync_state="in_sync"),
                         name="item_seller_state_idx"),
            models.Index(
                fields=["seller"], condition=Q(print_id__isnull=True), name="item_unmapped_idx"
            ),
            models.Index(fields=["seller", "-updated_at"], condition=~Q(sync_state="in_sync"),
                         name="item_seller_updated_idx"),
            # Staff search across all sellers (admin): by product id without a seller (by
            # blueprint: the index above; by name: ``BlueprintName``).
            models.Index(fields=["product_id"], name="item_product_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.blueprint_id} ×{self.quantity} (product {self.product_id})"

    @property
    def is_mapped(self) -> bool:
        return self.print_id is not None


class BlueprintName(models.Model):
    """Every (blueprint, name) pair some stock row has had: the staff console's name search.

    A name belongs to a blueprint (CardTrader's ``name_en``, the same for every seller holding the
    card), so a search looks names up here (a few thousand to a few hundred thousand rows,
    trigram-indexed on PostgreSQL) and then reads the items of the matching blueprints by index,
    re-checking each item's own name. A trigram index over every stock row cost ~20 % of a big
    import's database CPU (docs/IMPORT.md, "Indexes").

    Filled by the database, not by Python (PostgreSQL only; migration 0005): statement-level
    triggers on the stock table add the pairs of every inserted or updated row, so any writer (the
    import's COPY, an upsert, the ORM, raw SQL) keeps it complete. Pairs are never removed: a stale
    one only widens the candidate blueprints, which the re-check on the item's name filters out.
    """

    pk = models.CompositePrimaryKey("blueprint_id", "name")
    blueprint_id = models.IntegerField()
    name = models.CharField(max_length=255)

    def __str__(self) -> str:
        return f"{self.name} (blueprint {self.blueprint_id})"


from inventory.catalogue import CardPrint, OnePiecePrint, PokemonPrint, SealedProduct  # noqa: E402,F401
