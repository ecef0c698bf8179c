"""Limiter decision throughput and latency from one Python process on loopback Redis, next to
the `limits` library's moving-window limiter on the same Redis in the same run.

    DJANGO_SETTINGS_MODULE=brxsync.test_settings .venv/bin/python bench/ratelimit_bench.py [--n 20000]

Both sides use 1,000 sellers with the 200 / 10 s budget, round-robin, so almost every decision is
a grant (the common case) and each key sees the real read-modify-write. One decision meters one
CardTrader request; a pushed batch is one request (bulk_update of PUSH_BATCH_SIZE = 100 items is
one token), so items/s covered = decisions/s × batch size. The bucket is the production one
(``BucketConfig.from_settings()``: RATE_LIMIT_BURST 20, 18/s), which each seller's share of the
calls stays under, so every call is a grant.

``RedisGuard.decide`` sends its EVALSHA on ``ratelimit.scripts.Runner``'s own connections;
``limits`` goes through redis-py's ``execute_command``. The last row is our decision through
redis-py's path too, so the table shows how much of the difference is the client path and how
much the script.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")

import django

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from limits import RateLimitItemPerSecond  # noqa: E402
from limits.storage import RedisStorage  # noqa: E402
from limits.strategies import MovingWindowRateLimiter  # noqa: E402

from ratelimit.buckets import BucketConfig  # noqa: E402
from ratelimit.guard import Outcome, Priority  # noqa: E402
from ratelimit.services import RedisGuard, limiter_client  # noqa: E402

SELLERS = 1000


def measure(contenders: dict, n: int, rounds: int = 20) -> list[dict]:
    """Interleave the contenders in rounds so machine noise (2 shared cores) hits all alike."""
    for call in contenders.values():  # warm-up: connections, script caches
        for i in range(1000):
            call(i)
    lat: dict[str, list[int]] = {name: [] for name in contenders}
    spent = dict.fromkeys(contenders, 0.0)
    per_round = n // rounds
    for r in range(rounds):
        for name, call in contenders.items():
            start = time.perf_counter()
            for i in range(r * per_round, (r + 1) * per_round):
                t0 = time.perf_counter_ns()
                call(i)
                lat[name].append(time.perf_counter_ns() - t0)
            spent[name] += time.perf_counter() - start
    out = []
    for name, values in lat.items():
        values.sort()
        out.append({"name": name, "per_s": len(values) / spent[name], "p50_ms": values[len(values) // 2] / 1e6,
                    "p99_ms": values[int(len(values) * 0.99)] / 1e6, "mean_ms": statistics.fmean(values) / 1e6})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-rl-{run}"
    guard = RedisGuard(limiter_client(), prefix=prefix, buckets=BucketConfig.from_settings(), shared_cache_seconds=1.0)
    # the same decision sent through redis-py's generic command path (``Runner`` not lean), to show
    # what the client side costs next to the script itself
    generic = RedisGuard(limiter_client(), prefix=f"{prefix}-g", buckets=BucketConfig.from_settings(),
                         shared_cache_seconds=1.0)
    generic._run._lean = False
    storage = RedisStorage(settings.REDIS_URL, key_prefix=f"bench-limits-{run}")
    moving = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(settings.RATE_LIMIT_REQUESTS, int(settings.RATE_LIMIT_WINDOW_SECONDS))
    sellers = [f"seller-{i}" for i in range(SELLERS)]

    granted = {"ours": 0, "limits": 0}

    def ours(i: int) -> None:
        granted["ours"] += guard.decide(seller_id=sellers[i % SELLERS], priority=Priority.HIGH).granted

    def ours_generic(i: int) -> None:
        generic.decide(seller_id=sellers[i % SELLERS], priority=Priority.HIGH)

    def ours_record(i: int) -> None:
        guard.record(seller_id=sellers[i % SELLERS], outcome=Outcome.OK)

    def theirs(i: int) -> None:
        granted["limits"] += moving.hit(item, sellers[i % SELLERS])

    ping = redis.Redis.from_url(settings.REDIS_URL)
    try:
        results = measure({
            "redis PING (round-trip floor)": lambda i: ping.ping(),
            "limits MovingWindowRateLimiter.hit": theirs,
            "RedisGuard.decide (token bucket + breaker + factor)": ours,
            "RedisGuard.record(OK)": ours_record,
            "RedisGuard.decide via redis-py execute_command": ours_generic,
        }, args.n)
    finally:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for pattern in (f"{prefix}:*", f"{prefix}-g:*", f"bench-limits-{run}*"):
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)

    base = results[1]["per_s"]
    print("command: DJANGO_SETTINGS_MODULE=brxsync.test_settings .venv/bin/python bench/ratelimit_bench.py "
          f"--n {args.n}")
    print(f"load average {os.getloadavg()[0]:.1f} (2 shared cores: compare within a run)")
    print(f"{'':55} {'decisions/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'vs limits':>10}")
    for r in results:
        print(f"{r['name']:55} {r['per_s']:12,.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['per_s'] / base:9.2f}x")
    ours_r = results[2]
    print(f"grants: ours {granted['ours']}, limits {granted['limits']} (of {args.n + 1000} calls each)")
    batch = settings.PUSH_BATCH_SIZE
    print(f"one decision = one CardTrader request = one token; a bulk push of {batch} items is one decision, "
          f"so this process can meter {ours_r['per_s'] * batch:,.0f} pushed items/s")
    print(f"goals: p99 < 1 ms: {'met' if ours_r['p99_ms'] < 1 else 'NOT met'}; "
          f">= limits moving window: {'met' if ours_r['per_s'] >= base else 'NOT met'}")


if __name__ == "__main__":
    main()
