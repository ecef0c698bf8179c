"""Connecting a seller's CardTrader account (flow 1), disconnecting, pausing and resuming.

Connect validates the token with ``GET /info`` *before* anything is written: a token CardTrader
rejects (or a CardTrader we cannot reach) leaves no user, no settings row and no secret behind.
Only then, in one transaction, the seller is created if needed and the token and the webhook
``shared_secret`` are stored encrypted (``SyncSettings.set_credentials``), with CardTrader's app
and user ids. The answer carries the seller's webhook URL, built from the unguessable
``webhook_id`` (never the seller's UUID), and the steps to paste it into CardTrader.

Disconnect wipes the secrets but keeps the stock (the seller may reconnect; Ebartex still shows
the rows); webhooks for a disconnected seller are refused by the webhook endpoint. Pause holds
every outgoing change (edits stay queued in the outbox) and every import/reconcile until resumed.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from brxsync.errors import ServiceError
from inventory.models import ConnectionState, SyncSettings, SyncStatus, User
from ratelimit.exceptions import CircuitOpen, LimiterUnavailable, RateLimitWait
from syncops.cardtrader import client_for_token
from syncops.cardtrader import errors as ct

WEBHOOK_STEPS = (
    "Open CardTrader → Settings → Full API App (https://www.cardtrader.com/en/full_api_app).",
    "Paste the webhook URL above into the “Webhook endpoint” field and save.",
    "Keep the token secret: BRX Sync stores it encrypted; reconnect here if you regenerate it.",
    "Start an import (POST /api/v1/sellers/<uuid>/imports) to bring your CardTrader stock in.",
)
MAX_TOKEN_LENGTH = 4096


class ConnectionRefused(ServiceError):
    """A refused connection change; the API answers ``status`` with ``code`` and ``message``."""


class TokenInvalid(ConnectionRefused):
    """Empty/oversized token, or CardTrader refused it (the message carries CardTrader's reason)."""

    status = 422
    code = "cardtrader_token_rejected"


class CardTraderUnavailable(ConnectionRefused):
    """CardTrader could not answer ``/info`` now (5xx, timeout, rate limit): nothing stored, retry."""

    status = 503
    code = "cardtrader_unavailable"


class AccountInUse(ConnectionRefused):
    """The CardTrader account is connected to another seller. Two sellers on one CardTrader
    inventory would overwrite each other's quantities, and only one of them would get its orders'
    webhooks (CardTrader has one webhook URL per app)."""

    status = 409
    code = "cardtrader_account_in_use"


class SellerNotConnected(ConnectionRefused):
    status = 409
    code = "not_connected"


@dataclass(frozen=True)
class ConnectionResult:
    seller_id: uuid.UUID
    created: bool
    connection_state: str
    cardtrader_app_id: int | None
    cardtrader_app_name: str
    cardtrader_user_id: int | None
    webhook_url: str
    steps: tuple[str, ...]


def _validate(token: str) -> Any:
    token = (token or "").strip()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("cardtrader_token must be a non-empty token of at most 4096 characters")
    try:
        with client_for_token(token) as client:
            return client.info(max_wait=2.0)
    except ct.AuthError as exc:
        raise TokenInvalid(f"CardTrader rejected the token: {exc.message}",
                           {"cardtrader_status": exc.status, "cardtrader_request_id": exc.request_id}) from None
    except ct.NotConnected as exc:
        raise TokenInvalid(str(exc)) from None
    except (RateLimitWait, CircuitOpen, LimiterUnavailable) as exc:
        wait = getattr(exc, "wait_seconds", None) or getattr(exc, "retry_after", 1.0)
        raise CardTraderUnavailable(f"CardTrader is not reachable right now: {exc}",
                                    {"retry_after": round(float(wait), 1)}) from None
    except ct.CardTraderError as exc:
        raise CardTraderUnavailable(f"CardTrader could not validate the token: {exc}") from None


def connection_connect(*, seller_id: Any, token: str) -> ConnectionResult:
    """Validate ``token`` with CardTrader, then create/update the seller and store the secrets."""
    seller_uuid = uuid.UUID(str(seller_id))
    info = _validate(token)
    with transaction.atomic():
        _claim_account(info.user_id, seller_uuid)
        user, created = User.objects.get_or_create(pk=seller_uuid, defaults={"username": f"seller-{seller_uuid}"})
        sync, _ = SyncSettings.objects.select_for_update().get_or_create(user=user)
        sync.set_credentials(token=token.strip(), shared_secret=info.shared_secret)
        sync.cardtrader_app_id = info.id
        sync.cardtrader_app_name = info.name[:255]
        sync.cardtrader_user_id = info.user_id
        sync.connection_state = ConnectionState.CONNECTED
        sync.connected_at = timezone.now()
        if sync.sync_status == SyncStatus.ERROR and sync.last_error:
            sync.sync_status = SyncStatus.ACTIVE if sync.last_sync_at else SyncStatus.IDLE
        sync.last_error = ""
        sync.save()
    return ConnectionResult(
        seller_id=user.pk, created=created, connection_state=sync.connection_state,
        cardtrader_app_id=sync.cardtrader_app_id, cardtrader_app_name=sync.cardtrader_app_name,
        cardtrader_user_id=sync.cardtrader_user_id, webhook_url=sync.webhook_url, steps=WEBHOOK_STEPS,
    )


def _account_lock_key(cardtrader_user_id: int) -> int:
    digest = hashlib.blake2b(f"cardtrader-account:{cardtrader_user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _claim_account(cardtrader_user_id: int | None, seller_uuid: uuid.UUID) -> None:
    """Refuse a CardTrader account another connected seller holds (reconnecting the same seller,
    or taking over from a disconnected one, is fine). Two connects of one account at once are
    serialised by a transaction lock on the account id, so both cannot pass the check."""
    if cardtrader_user_id is None:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_account_lock_key(cardtrader_user_id)])
    taken = SyncSettings.objects.filter(
        cardtrader_user_id=cardtrader_user_id, connection_state=ConnectionState.CONNECTED,
    ).exclude(user_id=seller_uuid).exists()
    if taken:
        raise AccountInUse("this CardTrader account is already connected to another seller; "
                           "disconnect it there first")


def _settings_for_update(seller_id: Any) -> SyncSettings:
    sync = SyncSettings.objects.select_for_update().filter(user_id=seller_id).first()
    if sync is None:
        raise SellerNotConnected("this seller has no CardTrader connection")
    return sync


@transaction.atomic
def connection_disconnect(*, seller_id: Any) -> SyncSettings:
    """Wipe the token and shared secret; keep the stock. Idempotent."""
    sync = _settings_for_update(seller_id)
    sync.clear_credentials()
    sync.connection_state = ConnectionState.DISCONNECTED
    sync.sync_status = SyncStatus.IDLE
    sync.save()
    return sync


@transaction.atomic
def connection_set_paused(*, seller_id: Any, paused: bool) -> SyncSettings:
    """Pause or resume all processing for the seller. Resuming sends what was queued meanwhile."""
    sync = _settings_for_update(seller_id)
    if sync.paused == paused:
        return sync
    sync.paused = paused
    if paused:
        sync.sync_status = SyncStatus.PAUSED
    else:
        sync.sync_status = SyncStatus.ACTIVE if sync.last_sync_at else SyncStatus.IDLE
    sync.save()
    if not paused:
        from syncops.services.push_dispatch import push_dispatch
        from syncops.services.sync_runs import resume_bulk_operations

        seller = str(sync.user_id)
        transaction.on_commit(lambda: push_dispatch(seller), robust=True)
        resume_bulk_operations(sync.user_id)
    return sync
