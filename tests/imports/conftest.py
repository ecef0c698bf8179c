"""Fixtures for the import / reconcile tests: a real MariaDB catalogue mapping the sandbox's
fixture blueprints, a connected seller on a fresh sandbox account, and budget checks from the
sandbox's request log."""
from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from cardtrader_sandbox.catalogue import catalogue as sandbox_catalogue
from inventory.catalogue_mapping import clear_local_cache
from tests.api.conftest import jwt_settings, make_token, rsa_keys, seller_client  # noqa: F401 (API test fixtures)
from tests.catalogue_schema import TABLES, load_prints

PRINT_ID_BASE = 100_000


def mtg_blueprint_ids() -> list[int]:
    return [bp.id for bp in sandbox_catalogue().blueprints_for_game("mtg")]


def expected_mapping() -> dict[int, tuple[str, int] | None]:
    """What ``catalogue_prints`` loads: every 7th blueprint is left out of the catalogue (unmapped),
    every 5th of the rest is a sealed product, the others are cards."""
    out: dict[int, tuple[str, int] | None] = {}
    for i, bp in enumerate(mtg_blueprint_ids()):
        if i % 7 == 3:
            out[bp] = None
        elif i % 5 == 0:
            out[bp] = ("sealed_products", PRINT_ID_BASE + bp)
        else:
            out[bp] = ("cards_prints", PRINT_ID_BASE + bp)
    return out


@pytest.fixture(autouse=True)
def _isolated_mapping_cache(settings) -> None:
    """Each test gets its own cache namespace on the shared Redis, and an empty L1."""
    settings.CATALOGUE_MAPPING_CACHE_PREFIX = f"bpmap-test-{uuid.uuid4().hex[:10]}"
    clear_local_cache()
    yield
    clear_local_cache()


@pytest.fixture(autouse=True)
def _isolated_limiter(settings, monkeypatch) -> None:
    """The real Redis limiter, under keys of this test alone: the shared CardTrader breaker on the
    shared Redis must not be opened (or be open) because of another suite's fault injection."""
    import ratelimit

    settings.RATE_LIMIT_KEY_PREFIX = f"rl-imports-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(ratelimit, "_default", None)


@pytest.fixture
def catalogue_prints() -> dict[int, tuple[str, int] | None]:
    rows: dict[str, list[tuple[int, int | None, str]]] = {t: [] for t in TABLES}
    for bp, ref in expected_mapping().items():
        if ref is not None:
            rows[ref[0]].append((ref[1], bp, f"print of {bp}"))
    for table in TABLES:
        load_prints(table, rows[table])
    return expected_mapping()


@pytest.fixture
def control(cardtrader_sandbox):
    cardtrader_sandbox.control.clear_faults()
    yield cardtrader_sandbox.control
    cardtrader_sandbox.control.clear_faults()


@pytest.fixture
def connected_seller(sandbox_settings, sandbox_account, control):
    """A seller connected through the real connect service (GET /info on the sandbox)."""
    from inventory.models import User
    from syncops.services.connection import connection_connect

    seller_id = uuid.uuid4()
    connection_connect(seller_id=seller_id, token=sandbox_account.token)
    return User.objects.get(pk=seller_id)


def assert_within_budget(control: Any, user_id: int) -> None:
    """No sliding window of RATE_LIMIT_WINDOW_SECONDS saw more than RATE_LIMIT_REQUESTS calls,
    and the sandbox never answered 429."""
    log = control.request_log(user_id)
    times = sorted(e["time"] for e in log)
    window = float(settings.RATE_LIMIT_WINDOW_SECONDS)
    limit = int(settings.RATE_LIMIT_REQUESTS)
    start = 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        assert end - start + 1 <= limit, f"{end - start + 1} requests within {window}s"
    assert not [e for e in log if e["status"] == 429], "the sandbox rate-limited us"


def export_by_id(control: Any, user_id: int) -> dict[int, dict]:
    return {row["id"]: row for row in control.products(user_id)}


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def catalogue_down():
    """Point the ``blueprints`` connection at a closed port (a real outage: connection refused)."""
    conn = connections["blueprints"]
    old = conn.settings_dict["PORT"]
    conn.close()
    conn.settings_dict["PORT"] = closed_port()
    yield
    conn.close()
    conn.settings_dict["PORT"] = old
