"""The Celery broker transport: kombu's Redis transport, minus a new client object per publish.

kombu's Redis channel builds a ``redis.Redis`` for every message it publishes
(``conn_or_acquire`` → ``_create_client``), and redis-py's constructor copies its ~170 response
callbacks into a case-insensitive dict: ~30 % of a publish's CPU (cProfile; docs/BENCHMARKS.md,
"Tenth session"). Every webhook apply message pays it in the web process. A client holds no
connection of its own (it borrows one from the channel's pool per command) and may be shared
between threads, so one per channel and pool serves every publish. Selected in settings for
``redis://`` and ``rediss://`` broker URLs only; any other broker keeps kombu's own transport.
"""
from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _publish_client: Any = None
    _publish_client_pool: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's client (BRPOP, pub/sub) is kombu's business, unchanged
            return super()._create_client(asynchronous=True)
        pool = self.pool
        if self._publish_client is None or self._publish_client_pool is not pool:
            # A channel whose pool was replaced (closed, reconnected) gets a client on the new one.
            self._publish_client, self._publish_client_pool = super()._create_client(), pool
        return self._publish_client


class Transport(kombu_redis.Transport):
    Channel = Channel
