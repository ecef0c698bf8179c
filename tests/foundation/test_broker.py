"""The broker transport (brxsync/broker.py): one Redis client per channel, messages still land."""
from __future__ import annotations

from django.conf import settings

from brxsync.broker import Channel, Transport
from brxsync.celery import app


def test_publishes_reuse_one_client_per_channel_and_reach_the_queue(redis_client):
    queue_key = f"{settings.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']}high-priority"
    before = redis_client.llen(queue_key)
    try:
        with app.producer_or_acquire() as producer:
            channel = producer.channel
            assert isinstance(channel, Channel) and isinstance(producer.connection.transport, Transport)
            app.send_task("syncops.tasks.webhook_apply", args=[[1]], queue="high-priority", producer=producer)
            client = channel._publish_client
            app.send_task("syncops.tasks.webhook_apply", args=[[2]], queue="high-priority", producer=producer)
            assert client is not None and channel._publish_client is client  # kombu built one per message
            assert redis_client.llen(queue_key) == before + 2

            channel._disconnect_pools()  # what closing the channel does: the next publish needs a new pool
            app.send_task("syncops.tasks.webhook_apply", args=[[3]], queue="high-priority", producer=producer)
            assert channel._publish_client is not client
            assert channel._publish_client.connection_pool is channel.pool
            assert redis_client.llen(queue_key) == before + 3
    finally:
        redis_client.delete(queue_key)
