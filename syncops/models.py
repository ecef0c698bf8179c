"""Everything that crosses to or from CardTrader: the outbox, the inbox and the order ledger."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class OperationKind(models.TextChoices):
    IMPORT = "import", "Import"
    RECONCILE = "reconcile", "Reconcile"
    PUSH_UPDATE = "push_update", "Push update"
    PUSH_DELETE = "push_delete", "Push delete"
    ADJUST = "adjust", "Adjust (delta)"
    WEBHOOK_APPLY = "webhook_apply", "Webhook apply"


class OperationState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    PARTIAL = "partial", "Partially succeeded"
    CANCELLED = "cancelled", "Cancelled"
    UNCERTAIN = "uncertain", "Uncertain (settled by reconcile)"


OPEN_STATES = (OperationState.PENDING, OperationState.RUNNING)
TERMINAL_STATES = (
    OperationState.SUCCEEDED,
    OperationState.FAILED,
    OperationState.PARTIAL,
    OperationState.CANCELLED,
)


class SyncOperation(models.Model):
    """The transactional outbox and the audit log in one.

    Written in the same transaction as the local change it carries; the task is dispatched on
    commit and a sweeper re-dispatches rows that were never picked up, so a broker outage or a
    dead worker loses nothing. ``operation_key`` makes enqueueing idempotent.
    """

    operation_key = models.CharField(max_length=255)  # unique: op_operation_key_unique
    # No index of its own: op_seller_created_idx and op_seller_open_idx lead with it.
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operations",
                               db_index=False)
    kind = models.CharField(max_length=16, choices=OperationKind.choices)
    state = models.CharField(max_length=16, choices=OperationState.choices, default=OperationState.PENDING)
    item = models.ForeignKey(
        "inventory.InventoryItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="operations"
    )
    product_id = models.BigIntegerField(null=True, blank=True, help_text="CardTrader product id, when one item")
    payload = models.JSONField(default=dict, blank=True, help_text="The change to send (fields, delta, options)")
    result = models.JSONField(default=dict, blank=True, help_text="Per-item outcomes, reports")
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=8)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    cardtrader_job_uuid = models.CharField(max_length=64, blank=True, default="")  # op_ct_job_uuid_idx
    error_code = models.CharField(max_length=64, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    attempt_log = models.JSONField(default=list, blank=True, help_text="One entry per attempt")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Every local edit inserts a row here and every state change updates it, so the outbox
        # keeps only indexes something reads (migration 0006): the unique key and the job id
        # through a constraint and a plain index, as ``unique=True`` / ``db_index=True`` would
        # each add on PostgreSQL a LIKE-only twin that the admin's exact search never uses.
        constraints = [
            models.UniqueConstraint(fields=["operation_key"], name="op_operation_key_unique"),
            models.CheckConstraint(
                condition=Q(progress_total__isnull=True) | Q(progress_done__lte=models.F("progress_total")),
                name="op_progress_within_total",
            ),
        ]
        indexes = [
            # The seed's partial (user, status) index on open operations.
            models.Index(
                fields=["seller", "state"],
                condition=Q(state__in=["pending", "running"]),
                name="op_seller_open_idx",
            ),
            models.Index(
                fields=["state", "next_attempt_at"],
                condition=Q(state__in=["pending", "running"]),
                name="op_sweep_idx",
            ),
            models.Index(fields=["seller", "-created_at"], name="op_seller_created_idx"),
            models.Index(fields=["state", "-created_at"], name="op_state_created_idx"),
            models.Index(fields=["product_id"], name="op_product_idx"),
            models.Index(fields=["cardtrader_job_uuid"], name="op_ct_job_uuid_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"

    @property
    def progress_percent(self) -> float | None:
        if not self.progress_total:
            return None
        return round(100.0 * self.progress_done / self.progress_total, 1)


class WebhookState(models.TextChoices):
    RECEIVED = "received", "Received"
    APPLIED = "applied", "Applied"
    IGNORED = "ignored", "Recorded, not applied"
    STALE = "stale", "Stale (outside the time window)"
    FAILED = "failed", "Failed"


class WebhookEvent(models.Model):
    """Every accepted CardTrader delivery, stored before the 200 is sent (the inbox)."""

    delivery_id = models.CharField(max_length=64, help_text="CardTrader's delivery id")
    # No index of its own: (seller, object_id) and (seller, -received_at) lead with it.
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_events",
                               db_index=False)
    cause = models.CharField(max_length=32)
    object_class = models.CharField(max_length=32, default="Order")
    object_id = models.BigIntegerField(help_text="CardTrader order id")
    mode = models.CharField(max_length=8, default="live")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="CardTrader's `time`")
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=WebhookState.choices, default=WebhookState.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="Last hand-off to the broker; the sweeper re-dispatches old ones"
    )
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Every delivery inserts into each index, and the apply's state change (an indexed column)
        # rewrites them all: the inbox keeps only what its readers use (docs/WEBHOOKS.md). The
        # delivery id is unique through a constraint, not ``unique=True``, which on PostgreSQL
        # also builds a second, LIKE-only index nothing queries.
        constraints = [models.UniqueConstraint(fields=["delivery_id"], name="webhook_delivery_id_unique")]
        indexes = [
            models.Index(fields=["state", "received_at"], name="webhook_state_received_idx"),
            models.Index(fields=["seller", "object_id"], name="webhook_seller_order_idx"),
            models.Index(fields=["seller", "-received_at"], name="webhook_seller_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.cause} order {self.object_id} ({self.state})"


class OrderLedger(models.Model):
    """Per order item: what was decremented and restored, so each happens at most once."""

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="order_ledger")
    order_id = models.BigIntegerField()
    order_item_id = models.BigIntegerField()
    product_id = models.BigIntegerField()
    item = models.ForeignKey(
        "inventory.InventoryItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="ledger_entries"
    )
    quantity = models.PositiveIntegerField(help_text="Quantity sold in the order item")
    decremented = models.PositiveIntegerField(default=0, help_text="Actually taken from local stock")
    oversold = models.PositiveIntegerField(default=0, help_text="Sold beyond what was held locally")
    restored = models.PositiveIntegerField(default=0)
    decremented_at = models.DateTimeField(null=True, blank=True)
    restored_at = models.DateTimeField(null=True, blank=True)
    last_order_state = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["seller", "order_id", "order_item_id"], name="ledger_unique_order_item"
            ),
            models.CheckConstraint(condition=Q(restored__lte=models.F("decremented")), name="ledger_restore_le_taken"),
        ]
        indexes = [models.Index(fields=["seller", "product_id"], name="ledger_seller_product_idx")]

    def __str__(self) -> str:
        return f"order {self.order_id} item {self.order_item_id}: -{self.decremented} +{self.restored}"


class ConflictKind(models.TextChoices):
    OVERSELL = "oversell", "Oversell"
    UNKNOWN_PRODUCT = "unknown_product", "Order for an unknown product"
    DRIFT = "drift", "Drift found by reconcile"
    PUSH_REJECTED = "push_rejected", "CardTrader rejected a push"


class Conflict(models.Model):
    """Something staff must look at: an oversell, an order for a product we do not hold..."""

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conflicts")
    kind = models.CharField(max_length=24, choices=ConflictKind.choices)
    item = models.ForeignKey(
        "inventory.InventoryItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="conflicts"
    )
    product_id = models.BigIntegerField(null=True, blank=True)
    order_id = models.BigIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_note = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["seller", "kind"], condition=Q(resolved_at__isnull=True), name="conflict_open_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for seller {self.seller_id}"
