"""The one error taxonomy of the CardTrader client.

Callers (Celery tasks, services) branch on the class, never on status codes or message text:
``AuthError`` marks the seller's token bad, ``ValidationError`` fails the item for good,
``RateLimited`` / ``ServerError`` / ``Timeout`` / ``ConnectionError`` / ``UnexpectedResponse`` are
transient and re-scheduled by the caller. The client itself never retries anything.

Every error carries the guard ``outcome`` it was recorded as, the HTTP ``status`` (None when no
response arrived), CardTrader's ``request_id`` when it sent one, and ``outcome_unknown``: True when
the request was a write that CardTrader may have applied even though we did not get a usable
answer (read timeout, connection dropped after sending, 5xx). The push flow records those as
'uncertain' and lets reconciliation decide, because a blind retry of a create would add stock twice.
"""
from __future__ import annotations

from typing import Any

from ratelimit.guard import Outcome


class CardTraderError(Exception):
    """Base of every error the client raises (the limiter's own exceptions pass through unchanged)."""

    outcome: Outcome = Outcome.SERVER_ERROR

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        method: str = "",
        path: str = "",
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.method = method
        self.path = path
        self.outcome_unknown = outcome_unknown

    def __str__(self) -> str:
        where = f"{self.method} {self.path}".strip()
        bits = [b for b in (where, f"HTTP {self.status}" if self.status else "", self.message) if b]
        text = ": ".join(bits)
        if self.request_id:
            text += f" (request_id={self.request_id})"
        return text


class NotConnected(CardTraderError):
    """The seller has no stored CardTrader token: nothing was sent."""

    outcome = Outcome.AUTH_ERROR


class AuthError(CardTraderError):
    """401/403: the token is missing, revoked or not allowed here."""

    outcome = Outcome.AUTH_ERROR


class NotFound(CardTraderError):
    """404: the product / order / expansion does not exist (for this token)."""

    outcome = Outcome.CLIENT_ERROR


class ValidationError(CardTraderError):
    """422/400: CardTrader refused the request's content.

    ``field_errors`` maps a field to its messages (``{"price": ["must be positive"]}``);
    ``error_code`` is CardTrader's envelope code (``validation_error``, ``missing_parameter``...).
    """

    outcome = Outcome.CLIENT_ERROR

    def __init__(
        self,
        message: str,
        *,
        field_errors: dict[str, list[str]] | None = None,
        error_code: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.field_errors = field_errors or {}
        self.error_code = error_code


class RateLimited(CardTraderError):
    """429. ``retry_after`` (seconds) comes from a Retry-After header when CardTrader sends one,
    else from the documented limit named in the body: 10 s for the 200-per-10-s limit, 1 s for the
    per-second ones. ``scope`` says which: "global" or "per_second"."""

    outcome = Outcome.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float, scope: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.scope = scope


class ServerError(CardTraderError):
    """5xx (JSON or an HTML error page): CardTrader or a proxy in front of it failed."""

    outcome = Outcome.SERVER_ERROR


class Timeout(CardTraderError):
    """Connect or read timeout. ``request_sent`` is False only for a connect timeout: a read
    timeout means the request left, so for a write ``outcome_unknown`` is True."""

    outcome = Outcome.TIMEOUT

    def __init__(self, message: str, *, request_sent: bool, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.request_sent = request_sent


class ConnectionError(CardTraderError):  # shadows the builtin on purpose: the taxonomy name
    """The connection failed (refused, reset, dropped mid-body). ``request_sent`` as for Timeout."""

    outcome = Outcome.TIMEOUT

    def __init__(self, message: str, *, request_sent: bool, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.request_sent = request_sent


class UnexpectedResponse(CardTraderError):
    """A body we cannot use: an HTML page or other non-JSON text, a JSON shape we do not know,
    a truncated stream, or a status CardTrader does not document (3xx, 405, 409...)."""

    outcome = Outcome.SERVER_ERROR

    def __init__(self, message: str, *, outcome: Outcome | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if outcome is not None:
            self.outcome = outcome
