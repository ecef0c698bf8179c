"""Pytest fixtures: one sandbox subprocess per test session (per xdist worker), a fresh account
per test, and Django settings pointed at the sandbox. Registered in the root conftest.py."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from .control import Account
from .runner import RunningSandbox, start_sandbox, stop_sandbox


@pytest.fixture(scope="session")
def cardtrader_sandbox() -> Iterator[RunningSandbox]:
    sandbox = start_sandbox()
    try:
        yield sandbox
    finally:
        stop_sandbox(sandbox)


@pytest.fixture
def sandbox_account(cardtrader_sandbox: RunningSandbox) -> Account:
    return cardtrader_sandbox.control.create_account(name="Test Shop")


@pytest.fixture
def sandbox_settings(cardtrader_sandbox: RunningSandbox, settings):
    settings.CARDTRADER_API_BASE = cardtrader_sandbox.api_base
    return settings


@pytest.fixture
def fast_jobs(cardtrader_sandbox: RunningSandbox) -> Iterator:
    """Bulk jobs pending and running 0.2 s each (CardTrader's real delays are unknown): keeps tests
    that wait for job outcomes short. The sandbox's previous timing is put back afterwards."""
    control = cardtrader_sandbox.control
    before = control.config()
    control.set_config(job_pending_seconds=0.2, job_running_seconds=0.2)
    yield control
    control.set_config(job_pending_seconds=before["job_pending_seconds"],
                       job_running_seconds=before["job_running_seconds"])
