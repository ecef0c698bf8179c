"""Fixtures for the real services the suite runs against: PostgreSQL, MariaDB, Redis.

Nothing here skips for want of a service: `.ci/run` (and `make test`) make sure they are up,
and a missing one fails loudly.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from tests.catalogue_schema import create_catalogue_schema


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker, django_db_keepdb, django_db_modify_db_settings):
    """Create the PostgreSQL test database with Django, and the catalogue schema by hand.

    Django must not create or migrate the ``blueprints`` alias (the router forbids it, and the
    catalogue session is read-only), so only ``default`` goes through ``setup_databases``.
    """
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        create_catalogue_schema()
        old_config = setup_databases(verbosity=0, interactive=False, keepdb=django_db_keepdb, aliases={"default"})
    yield
    from syncops.services.webhooks import inbox_connection

    inbox_connection.close()  # the webhook inbox's own connection would hold the database open
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            teardown_databases(old_config, verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _broker_namespace_cleanup() -> Iterator[None]:
    """Drop this session's broker keys at the end (see brxsync/test_settings.py)."""
    yield
    namespace = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix")
    if not namespace:
        return
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class _SecretScan(logging.Handler):
    """Formats every log record the way production does (redaction filter + JSON formatter) and
    remembers any line that carries a CardTrader token or shared secret the sandbox issued."""

    def __init__(self) -> None:
        from brxsync.observability.logs import make_formatter
        from brxsync.observability.redaction import RedactingFilter

        super().__init__(level=logging.DEBUG)
        self.setFormatter(make_formatter("json"))
        self.addFilter(RedactingFilter())
        self.secrets: set[str] = set()
        self.leaks: list[str] = []
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted cannot leak either
            return
        self.lines += 1
        for secret in self.secrets:
            if secret in line:
                self.leaks.append(f"{record.name}: {line[:300]}")


@pytest.fixture(scope="session", autouse=True)
def _scan_logs_for_secrets() -> Iterator[_SecretScan]:
    """Issue 10's promise, checked over the whole suite: no log line of any flow the tests run
    ever carries a sandbox account's token or shared secret. Every account created through the
    sandbox's control helper is watched from the moment it exists."""
    from cardtrader_sandbox.control import SandboxControl

    scan = _SecretScan()
    original = SandboxControl.create_account

    def watched(self: SandboxControl, *args: object, **kwargs: object):
        account = original(self, *args, **kwargs)
        scan.secrets.update(v for v in (account.token, account.shared_secret) if v and len(v) >= 8)
        return account

    SandboxControl.create_account = watched  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(scan)
    try:
        yield scan
    finally:
        root.removeHandler(scan)
        SandboxControl.create_account = original  # type: ignore[method-assign]
    assert not scan.leaks, f"{len(scan.leaks)} log line(s) carried a CardTrader secret:\n" + "\n".join(scan.leaks[:10])


@pytest.fixture(autouse=True)
def _isolated_rate_limits(settings, monkeypatch) -> Iterator[None]:
    """Each test gets its own bucket and breaker namespace on the shared Redis.

    A fault test that opens the shared CardTrader breaker must not make the next test's calls
    fail. The environment variable carries the namespace into worker subprocesses a test starts.
    """
    import ratelimit

    prefix = f"rlt-{uuid.uuid4().hex[:10]}"
    settings.RATE_LIMIT_KEY_PREFIX = prefix
    monkeypatch.setenv("RATE_LIMIT_KEY_PREFIX", prefix)
    monkeypatch.setattr(ratelimit, "_default", None)
    yield


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client of the real Redis. Tests use unique key prefixes; never FLUSHDB (shared server)."""
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=False)
    client.ping()
    yield client
    client.close()


@pytest.fixture
def unique_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def seller(db):
    from inventory.models import SyncSettings, User

    user = User.objects.create(username=f"seller-{uuid.uuid4().hex[:8]}")
    SyncSettings.objects.create(user=user)
    return user
