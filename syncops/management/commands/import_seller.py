"""``manage.py import_seller <seller uuid>``: import a seller's CardTrader stock here, with a live bar.

Runs the same service the bulk-sync worker runs (lease, operation row, progress), in this process,
so an operator sees it move. The total is an estimate (the seller's current item count): CardTrader's
export has no count, so the bar may finish early or late and snaps to 100 % at the end.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from inventory.selectors import seller_get
from syncops.services.imports import import_run, import_start
from syncops.services.sync_runs import SyncBusy, SyncStartRefused

BAR = 40


class Command(BaseCommand):
    help = "Import a seller's CardTrader stock now, showing progress."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("seller", help="seller UUID")

    def handle(self, *args: Any, **options: Any) -> None:
        seller = seller_get(seller_id=options["seller"])
        if seller is None:
            raise CommandError(f"no seller {options['seller']}")
        try:
            op = import_start(seller=seller, actor="manage.py import_seller", dispatch=False)
        except SyncBusy as exc:
            running = f" (operation #{exc.operation.pk})" if exc.operation else ""
            raise CommandError(f"an import or reconcile is already running{running}") from None
        except SyncStartRefused as exc:
            raise CommandError(exc.message) from None
        estimate = int(op.payload.get("estimated_total") or 0)
        started = time.monotonic()
        tty = sys.stdout.isatty()

        def show(p: dict[str, Any]) -> None:
            done = p["processed"]
            total = done if p.get("finished") else max(estimate, done)
            frac = done / total if total else 0.0
            rate = done / max(time.monotonic() - started, 1e-6)
            line = (f"[{'#' * int(frac * BAR):<{BAR}}] {frac * 100:5.1f}% {done:>8,}/{total:,} "
                    f"new {p['inserted']:,} changed {p['updated']:,} · {rate:,.0f}/s")
            self.stdout.write(("\r" if tty else "") + line, ending="" if tty else "\n")
            self.stdout.flush()

        outcome = import_run(op.pk, progress=show)
        if tty:
            self.stdout.write("")
        if outcome.state != "succeeded":
            raise CommandError(f"import #{op.pk} {outcome.state}: {outcome.result or outcome.countdown}")
        r = outcome.result
        self.stdout.write(self.style.SUCCESS(
            f"import #{op.pk} done: {r['processed']:,} products ({r['inserted']:,} new, {r['updated']:,} changed, "
            f"{r['unmapped']:,} unmapped, {r['removed']:,} removed) in {r['seconds']:.1f}s"))
