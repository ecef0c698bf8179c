"""64 threads in 4 processes hammer one seller for 15 s through acquire(): the grants never
exceed capacity + rate × 15 (200 + 20 × 15 = 500) and reach at least 95 % of it, while a second
seller hammered at the same time gets its own full budget. Real processes, threads and Redis.
Half the threads are high priority: normal ones stop at the reserved share, high ones may use
it, so the whole budget is reachable."""
from __future__ import annotations

import multiprocessing
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings

from ratelimit.breakers import BreakerConfig
from ratelimit.buckets import BucketConfig
from ratelimit.exceptions import RateLimitWait
from ratelimit.guard import Priority
from ratelimit.services import RedisGuard
from tests.ratelimit.conftest import delete_prefix

PROCESSES, THREADS_A, THREADS_B, SECONDS = 4, 16, 2, 15.0
CAPACITY, WINDOW = 200, 10.0


def hammer(prefix: str, url: str, start_at: float, results) -> None:
    """One worker process: its own Redis client and guard, like a Celery worker."""
    guard = RedisGuard(redis.Redis.from_url(url), prefix=prefix,
                       buckets=BucketConfig(capacity=CAPACITY, window_seconds=WINDOW, reserved_share=0.2),
                       breakers=BreakerConfig())
    deadline = start_at + SECONDS
    counts: dict[str, int] = {"a": 0, "b": 0}
    lock = threading.Lock()

    def run(seller: str, priority: Priority) -> None:
        time.sleep(max(0.0, start_at - time.time()))
        while (remaining := deadline - time.time()) > 0:
            try:
                guard.acquire(seller_id=seller, priority=priority, max_wait=min(0.5, remaining))
            except RateLimitWait as exc:
                time.sleep(min(exc.wait_seconds, max(0.0, deadline - time.time())))
                continue
            if time.time() > deadline:  # granted after the window closed: counts against us anyway
                with lock:
                    counts[seller + "_late"] = counts.get(seller + "_late", 0) + 1
            with lock:
                counts[seller] += 1

    threads = [threading.Thread(target=run, args=("a", Priority.HIGH if i % 2 else Priority.NORMAL))
               for i in range(THREADS_A)]
    threads += [threading.Thread(target=run, args=("b", Priority.HIGH if i % 2 else Priority.NORMAL))
                for i in range(THREADS_B)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(counts)


@pytest.mark.slow
def test_many_processes_never_exceed_the_budget_and_waste_almost_none(redis_client):
    prefix = f"t-rl-exact-{uuid.uuid4().hex[:10]}"
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    start_at = time.time() + 1.0  # every process set up before the clock starts
    procs = [ctx.Process(target=hammer, args=(prefix, settings.REDIS_URL, start_at, results)) for _ in range(PROCESSES)]
    try:
        for p in procs:
            p.start()
        totals: dict[str, int] = {}
        for _ in procs:
            for key, value in results.get(timeout=SECONDS + 30).items():
                totals[key] = totals.get(key, 0) + value
        for p in procs:
            p.join(timeout=10)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        delete_prefix(redis_client, prefix)

    budget = CAPACITY + CAPACITY / WINDOW * SECONDS  # 500
    for seller in ("a", "b"):
        assert totals[seller] <= budget, totals
        assert totals[seller] >= 0.95 * budget, totals
    assert totals.get("a_late", 0) + totals.get("b_late", 0) <= 2, totals  # grants land inside the window
