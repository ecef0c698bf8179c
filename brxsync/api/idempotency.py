"""``Idempotency-Key`` for every mutating endpoint (Stripe's semantics, Brandur's recovery point).

Phases, each its own transaction:

1. ``begin`` commits a ``started`` row for (caller, key) before the view runs. The unique
   constraint makes exactly one of two concurrent duplicates win; the loser sees the row and
   gets the stored answer (if already completed) or a 409 ``idempotency_key_in_use``.
2. The view runs inside ``transaction.atomic`` and ``complete`` stores its answer in that same
   transaction: the effect and "answered" commit together, so a crash in between leaves
   neither. (Celery dispatches use ``on_commit``, so they fire only once both are durable.)
3. A 5xx rolled the view back, so ``release`` deletes the row and the same key may act again.
   A 4xx is an answer and is replayed, as Stripe does.

A ``started`` row older than ``IDEMPOTENCY_LOCK_SECONDS`` is the trace of a process that died
mid-request (its writes rolled back with it); the next duplicate takes it over and acts.
Keys live ``IDEMPOTENCY_RETENTION_HOURS`` (≥ 24 h), then the beat task prunes them.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from brxsync.api.exceptions import Conflict, Unprocessable
from brxsync.api.models import IdempotencyRecord, IdempotencyState

HEADER = "Idempotency-Key"
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"
# Response headers worth replaying (the body and status are always kept).
_KEPT_HEADERS = ("Location",)


def retention() -> timedelta:
    return timedelta(hours=max(24, settings.IDEMPOTENCY_RETENTION_HOURS))


def lock_timeout() -> timedelta:
    return timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS)


def validate_key(key: str) -> str:
    if not (1 <= len(key) <= MAX_KEY_LENGTH) or not all(0x21 <= ord(ch) <= 0x7E for ch in key):
        raise exceptions.ValidationError(
            {HEADER: [f"Must be 1-{MAX_KEY_LENGTH} printable ASCII characters without spaces."]},
            code="invalid_idempotency_key",
        )
    return key


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What "the same request" means: method, path and body (JSON compared by value, not bytes)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def replay(record: IdempotencyRecord) -> Response:
    headers = {**record.response_headers, REPLAYED_HEADER: "true"}
    return Response(record.response_body, status=record.response_status, headers=headers)


def begin(*, caller: str, key: str, method: str, path: str, body: bytes) -> IdempotencyRecord | Response:
    """Claim ``key`` for this request, or answer it from a previous one.

    Returns the claimed record (the caller must then act and ``complete``/``release`` it), or
    a ``Response`` to send as is (a replay). Raises 422 for a reused key with another request,
    409 while the first request with this key is still running. Must run in autocommit (not
    inside an outer transaction), or concurrent duplicates could not see the claim.
    """
    validate_key(key)
    fp = fingerprint(method, path, body)
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    caller=caller, key=key, method=method, path=path[:512], fingerprint=fp,
                    created_at=now, locked_at=now,
                )
        except IntegrityError:
            pass
        with transaction.atomic():
            existing = IdempotencyRecord.objects.select_for_update().filter(caller=caller, key=key).first()
            if existing is None:  # pruned or released between our insert and this read
                continue
            if existing.created_at < now - retention():
                existing.delete()  # expired but not yet pruned: the key is free again
                continue
            if existing.fingerprint != fp:
                raise Unprocessable(
                    "This Idempotency-Key was already used for a different request.",
                    code="idempotency_key_reused",
                    details={"original_method": existing.method, "original_path": existing.path},
                )
            if existing.state == IdempotencyState.COMPLETED:
                return replay(existing)
            if existing.locked_at > now - lock_timeout():
                raise Conflict(
                    "A request with this Idempotency-Key is still in progress; retry shortly.",
                    code="idempotency_key_in_use",
                )
            existing.locked_at = now  # its owner died mid-request (its writes rolled back): take over
            existing.save(update_fields=["locked_at"])
            return existing
    raise Conflict("This Idempotency-Key is contended; retry shortly.", code="idempotency_key_in_use")


def complete(record: IdempotencyRecord, response: Response) -> None:
    """Store the answer. Called inside the view's transaction, so it commits with the effect."""
    body = json.loads(json.dumps(response.data, cls=JSONEncoder)) if response.data is not None else None
    headers = {name: response[name] for name in _KEPT_HEADERS if name in response}
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyState.COMPLETED,
        response_status=response.status_code,
        response_body=body,
        response_headers=headers,
        completed_at=timezone.now(),
    )


def release(record: IdempotencyRecord) -> None:
    """Forget a claim whose request failed with a 5xx (rolled back): the key may act again."""
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyState.STARTED).delete()


def prune_expired(*, now: datetime | None = None) -> int:
    """Delete records past retention; returns how many. Run by beat (brxsync.schedules)."""
    cutoff = (now or timezone.now()) - retention()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
