"""CPU of one access line (``logs.log_direct``) with and without Sentry's logging integration.

Sentry patches ``Logger.callHandlers`` for every logger, which used to send every access line the
stdlib way (two LogRecords, the caller lookup, a second formatter pass). ``init_sentry`` now has
Sentry ignore the access logger and trusts its patch for that logger only. Three modes in one
process, each over ``--lines`` lines into production's handler shape (stderr's formatter and
filter, written to memory): Sentry off; Sentry on; Sentry on with the patch not trusted (what
every line cost before). A capturing transport stands in for Sentry's server, which does not
exist here (no event is produced by an INFO line anyway).

Run:  .venv/bin/python bench/access_line_bench.py [--lines 20000 --rounds 3]
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from _proc import HostSteal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    steal = HostSteal()
    import django

    django.setup()
    from sentry_sdk.transport import Transport

    from brxsync.observability import context, logs
    from brxsync.observability.redaction import RedactingFilter
    from brxsync.sentry import init_sentry

    class Discard(Transport):
        def capture_envelope(self, envelope: object) -> None:
            pass

    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logs.make_formatter("json"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers, root.level = [handler], logging.INFO

    def per_line() -> float:
        handler.stream = io.StringIO()
        started = time.process_time()
        for _ in range(args.lines):
            logs.log_direct(context.access_logger, logging.INFO, "http_request", method="POST",
                            route="api/v1/webhooks/cardtrader/<str:webhook_id>/", status=200, duration_ms=2.5)
        return (time.process_time() - started) / args.lines * 1e6

    results: dict[str, list[float]] = {"Sentry off": [per_line() for _ in range(args.rounds)]}
    init_sentry("https://public@sentry.example/1", transport=Discard)
    trusted = logs._trusted_call_handlers
    results["Sentry on"], results["Sentry on, patch not trusted (before)"] = [], []
    for _ in range(args.rounds):
        results["Sentry on"].append(per_line())
        logs._trusted_call_handlers = None
        results["Sentry on, patch not trusted (before)"].append(per_line())
        logs._trusted_call_handlers = trusted
    print(f"command: .venv/bin/python bench/access_line_bench.py --lines {args.lines} --rounds {args.rounds}")
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; {steal.line()}")
    base = statistics.median(results["Sentry off"])
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:40} {median:6.1f} µs per line (rounds {', '.join(f'{v:.1f}' for v in values)}; "
              f"{median / base:.2f}× Sentry off)")


if __name__ == "__main__":
    main()
