"""Import: every CardTrader product of a seller into local stock (flow 2 of DESIGN.md).

``import_start`` creates the operation and takes the seller's lease (``SyncBusy`` → 409 naming the
running operation). ``import_run`` (the bulk-sync task) streams ``GET /products/export``, maps each
chunk's blueprints, and per chunk of ``IMPORT_CHUNK_SIZE`` products, in one transaction: COPY into a
temporary stage, one set-based upsert, heartbeat with progress (``ChunkWriter``: ``IMPORT_WRITERS``
connections write chunks side by side). A seller's first import (no stock yet) COPYs chunks
straight into the stock table instead, falling back to the upsert at the first row already there.
The ids are remembered as seen; after the last chunk (and only after a complete export) items
CardTrader no longer lists are marked removed.

Re-running is always safe: the upsert is keyed on (seller, product id) and skips unchanged rows,
so a crash halfway leaves no duplicates and the next run (a re-delivered task, a retry, or a new
import once the dead worker's lease expired) simply completes the job.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from inventory.models import InventoryItem, SyncSettings, SyncStatus, User
from syncops.cardtrader import client_for_seller
from syncops.models import OperationKind, SyncOperation
from syncops.services.export_process import parse_in_child
from syncops.services.stage_rows import export_row
from syncops.services.stock_stage import (
    ChunkWriter,
    StageTables,
    export_chunks,
    map_rows,
    mark_removed,
)
from syncops.services.sync_runs import BulkRun, RunOutcome, run_operation, start_operation

ProgressCallback = Callable[[dict[str, Any]], None]
HEARTBEAT_IDLE_SECONDS = 10.0


def chunk_size() -> int:
    return max(100, int(settings.IMPORT_CHUNK_SIZE))


def import_start(*, seller: User, actor: str = "", dispatch: bool = True) -> SyncOperation:
    """Start an import (raises ``SyncBusy`` / ``SyncStartRefused``). The task runs after commit."""
    estimate = InventoryItem.objects.filter(seller=seller).count()
    return start_operation(seller=seller, kind=OperationKind.IMPORT, payload={"estimated_total": estimate},
                           actor=actor, dispatch=dispatch)


def parse_in_process() -> bool:
    """Whether the export is parsed in this process (``IMPORT_PARSE_PROCESS`` off, or SQLite) rather
    than in a parser child process (``export_process``; PostgreSQL)."""
    return not settings.IMPORT_PARSE_PROCESS or connection.vendor != "postgresql"


def stream_export(run: BulkRun, sync: SyncSettings, client: Any = None):
    """The seller's export as chunks of stage rows (shared with reconcile): lists of rows parsed
    here, or ``EncodedChunk``s from a parser process. ``client`` is injectable for the bench;
    normally the seller's metered client."""
    own = client is None
    client = client or client_for_seller(sync)
    size, here = chunk_size(), parse_in_process()
    if here:
        rows = client.export_products(max_wait=1.0, convert=export_row)
    else:
        rows = client.export_products(max_wait=1.0, parse=partial(parse_in_child, chunk_size=size))
    try:
        yield from export_chunks(rows, size, on_idle=run.heartbeat, idle_seconds=HEARTBEAT_IDLE_SECONDS,
                                 prechunked=not here)
    finally:
        if own:
            client.close()


def import_body(run: BulkRun, sync: SyncSettings, *, progress: ProgressCallback | None = None,
                client: Any = None) -> dict[str, Any]:
    seller_id = run.seller_id
    started = time.monotonic()
    unmapped = 0
    # A seller without stock gets the first-import COPY (ChunkWriter): nothing to conflict with. A
    # crashed first import's retry finds its committed chunks and upserts.
    first = not InventoryItem.objects.filter(seller_id=seller_id).exists()
    with StageTables(keep_rows=False) as stage:
        with ChunkWriter(stage, seller_id, writers=settings.IMPORT_WRITERS, heartbeat=run.heartbeat,
                         first_import=first) as writer:
            for rows in stream_export(run, sync, client):
                unmapped += map_rows(rows)
                writer.write(rows)
                if progress:
                    progress({"processed": writer.done, "inserted": writer.counts.inserted,
                              "updated": writer.counts.updated})
            writer.finish()
        counts, processed = writer.counts, writer.done
        with transaction.atomic():
            stage.finish_seen()
            removed = mark_removed(stage, seller_id, timezone.now())
            run.heartbeat(processed)
    result = {
        "processed": processed, "inserted": counts.inserted, "updated": counts.updated,
        "unchanged": processed - counts.inserted - counts.updated, "unmapped": unmapped,
        "removed": removed, "copied": writer.copied, "seconds": round(time.monotonic() - started, 3),
    }
    if progress:
        progress({**result, "finished": True})
    return result


def import_run(operation_id: int, *, progress: ProgressCallback | None = None, client: Any = None) -> RunOutcome:
    """Run (or resume after a crash) one import operation. See ``sync_runs.run_operation``."""
    return run_operation(
        operation_id, lambda run, sync: import_body(run, sync, progress=progress, client=client),
        status_while_running=SyncStatus.IMPORTING,
    )
