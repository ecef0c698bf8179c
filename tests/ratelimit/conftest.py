"""Guards on the real Redis, each test under its own key prefix (the server is shared)."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings

from ratelimit.breakers import BreakerConfig
from ratelimit.buckets import BucketConfig
from ratelimit.services import RedisGuard

GuardFactory = Callable[..., RedisGuard]


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}:*", count=500):
        client.delete(key)


@pytest.fixture
def make_guard(redis_client: redis.Redis) -> Iterator[GuardFactory]:
    """Build guards with small, fast budgets; every key they write is deleted afterwards."""
    prefixes: list[str] = []

    def build(*, prefix: str | None = None, breakers: BreakerConfig | None = None, client=None,
              **bucket_overrides) -> RedisGuard:
        prefix = prefix or f"t-rl-{uuid.uuid4().hex[:12]}"
        prefixes.append(prefix)
        values = {"capacity": 10, "window_seconds": 1.0, "reserved_share": 0.0}
        values.update(bucket_overrides)
        return RedisGuard(
            client if client is not None else redis.Redis.from_url(settings.REDIS_URL),
            prefix=prefix, buckets=BucketConfig(**values), breakers=breakers or BreakerConfig(),
            shared_cache_seconds=0.0,
        )

    yield build
    for prefix in prefixes:
        delete_prefix(redis_client, prefix)
