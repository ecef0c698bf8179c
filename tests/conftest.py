"""Fixtures for the real services the suite runs against: PostgreSQL, MariaDB, Redis.

Nothing here skips for want of a service: `.ci/run` (and `make test`) make sure they are up,
and a missing one fails loudly.
"""
from __future__ import annotations

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
