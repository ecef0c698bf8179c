"""Fixtures for the client's contract tests: a client wired to the real sandbox over HTTP,
and a recording guard (a test double of our own ``RequestGuard`` protocol, not of CardTrader)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ratelimit.guard import Bucket, Outcome, Priority
from syncops.cardtrader import CardTraderClient, client_for_token


@dataclass
class RecordingGuard:
    """Records every acquire/record. At acquire time it also notes how many requests the sandbox
    has logged for the account, which proves acquire happened before the request was sent."""

    control: Any = None
    user_id: int | None = None
    raise_on_acquire: BaseException | None = None
    events: list[tuple] = field(default_factory=list)

    def acquire(self, *, seller_id: str, bucket: Bucket = Bucket.GLOBAL, cost: int = 1,
                priority: Priority = Priority.NORMAL, max_wait: float = 0.0) -> None:
        logged = len(self.control.request_log(self.user_id)) if self.control is not None else None
        self.events.append(("acquire", seller_id, bucket, cost, priority, max_wait, logged))
        if self.raise_on_acquire is not None:
            raise self.raise_on_acquire

    def record(self, *, seller_id: str, outcome: Outcome, bucket: Bucket = Bucket.GLOBAL) -> None:
        self.events.append(("record", seller_id, bucket, outcome))

    @property
    def outcomes(self) -> list[Outcome]:
        return [e[3] for e in self.events if e[0] == "record"]

    @property
    def buckets(self) -> list[Bucket]:
        return [e[2] for e in self.events if e[0] == "acquire"]


@pytest.fixture
def control(cardtrader_sandbox):
    return cardtrader_sandbox.control


@pytest.fixture
def guard(control, sandbox_account) -> RecordingGuard:
    return RecordingGuard(control=control, user_id=sandbox_account.user_id)


@pytest.fixture
def client(sandbox_settings, sandbox_account, guard, control):
    """A client built by the production factory from settings that point at the sandbox."""
    control.clear_faults()
    c: CardTraderClient = client_for_token(sandbox_account.token, guard=guard)
    yield c
    c.close()
    control.clear_faults()


def api_calls(control, user_id) -> list[dict]:
    return control.request_log(user_id)
