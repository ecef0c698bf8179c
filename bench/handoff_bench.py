"""CPU the webhook hand-off's queueing costs per delivery, publishes left out.

Four threads stand in for gunicorn's request threads: each does a little Python work, sleeps
0.5 ms (a request's waits on the network and the database) and, in the measured mode, hands a
delivery id to ``syncops.services.webhooks._HandOff``, whose publisher thread batches them as in
production. ``dispatch_apply`` is replaced by a counter (the broker's cost is measured end to end
by ``webhook_bench.py``): what is left is the hand-over between request threads and the publisher
— appends, wake-ups, and the interpreter passing between threads. Baseline in the same run: the
same threads without the hand-off. Rounds alternate, so drift on a shared machine hits both.

Run:  .venv/bin/python bench/handoff_bench.py [--per-thread 2500 --rounds 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

from _proc import HostSteal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")
THREADS = 4


def _work(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def _run(hand_off: object | None, per_thread: int) -> float:
    """CPU seconds of this process per simulated request."""

    def request_thread(base: int) -> None:
        for i in range(per_thread):
            _work(600)
            if hand_off is not None:
                hand_off.submit(base + i)  # type: ignore[attr-defined]
            time.sleep(0.0005)

    cpu0 = time.process_time()
    threads = [threading.Thread(target=request_thread, args=(k * 10**7,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.3)  # the last linger: its publish belongs to this mode
    return (time.process_time() - cpu0) / (THREADS * per_thread)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-thread", type=int, default=2500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    steal = HostSteal()
    import django

    django.setup()
    from syncops.services import webhooks

    published = [0]

    def count(event_ids: list[int]) -> bool:
        published[0] += len(event_ids)
        return True

    webhooks.dispatch_apply = count  # the publisher thread looks it up at call time
    hand_off = webhooks._HandOff()
    base, with_hand_off = [], []
    for _ in range(args.rounds):
        base.append(_run(None, args.per_thread))
        with_hand_off.append(_run(hand_off, args.per_thread))
    expected = args.rounds * THREADS * args.per_thread
    print(f"command: .venv/bin/python bench/handoff_bench.py --per-thread {args.per_thread} --rounds {args.rounds}")
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; {steal.line()}")
    print(f"published {published[0]} of {expected} deliveries")
    for b, w in zip(base, with_hand_off, strict=True):
        print(f"round: baseline {b * 1e6:6.1f} µs/request, with hand-off {w * 1e6:6.1f} µs "
              f"(+{(w - b) * 1e6:.1f} µs, ratio {w / b:.2f})")
    diff = statistics.median(w - b for b, w in zip(base, with_hand_off, strict=True))
    print(f"hand-off CPU per delivery (median of rounds): {diff * 1e6:.1f} µs")
    if published[0] != expected:
        raise SystemExit("deliveries were lost in the hand-off")


if __name__ == "__main__":
    main()
