"""Reconcile: compare local stock with CardTrader's export and repair it (flow 5 of DESIGN.md).

CardTrader sends no webhook for what a seller changes on its website, and a webhook can be lost;
reconcile catches both. It reuses the import's pipeline (``stock_stage``: streamed export, batched
mapping, COPY into a temporary stage) but keeps the whole export staged, then computes the diff
in SQL against the seller's items:

- ``missing_locally``: CardTrader lists it, we do not (or we had marked it removed);
- ``missing_remotely``: we list it in sync, CardTrader no longer does (sold out, deleted);
- drift: ``quantity``, ``price`` (cents or currency), ``properties``, ``other`` (description,
  user_data_field, graded, blueprint, names, print mapping);
- ``pending_local``: differs, but a local change is still waiting to be pushed: reported, not
  touched (the push goes out, and the next reconcile settles it).

CardTrader is the authority for stock: applying the diff is exactly the import's upsert and
removal over the staged export. The report (counts and up to ``RECONCILE_REPORT_ITEMS`` items with
local/remote values) lands on the operation's ``result``; ``dry_run`` produces the same report and
changes nothing.
"""
# ruff: noqa: S608 - table and column names are our own constants or generated ids, never input
from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from brxsync import features
from inventory.models import ConnectionState, ItemSyncState, SyncSettings, SyncStatus, User
from syncops.models import OperationKind, SyncOperation
from syncops.services.imports import stream_export
from syncops.services.stock_stage import (
    ITEMS,
    OVERWRITABLE,
    REMOVABLE,
    StageTables,
    map_rows,
    mark_removed,
    seller_param,
    upsert_from_stage,
)
from syncops.services.sync_runs import (
    BULK_KINDS,
    BulkRun,
    RunOutcome,
    SyncStartRefused,
    run_operation,
    start_operation,
)
from syncops.services.yielding import yield_to_webhooks

OTHER_FIELDS = ("description", "user_data_field", "graded", "blueprint_id", "name", "game_id", "category_id",
                "expansion_id", "print_id", "print_table")


def report_limit() -> int:
    return int(settings.RECONCILE_REPORT_ITEMS)


def reconcile_start(*, seller: User, dry_run: bool = False, actor: str = "", dispatch: bool = True) -> SyncOperation:
    """Start a reconcile (raises ``SyncBusy`` / ``SyncStartRefused`` like an import)."""
    return start_operation(seller=seller, kind=OperationKind.RECONCILE, payload={"dry_run": bool(dry_run)},
                           actor=actor, dispatch=dispatch)


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _diff_sql(stage: StageTables) -> tuple[str, str, str]:
    """(drift expressions, join of stage and items, anti-join of removable items)."""
    q = "i.quantity IS DISTINCT FROM s.quantity"
    p = "(i.price_cents IS DISTINCT FROM s.price_cents OR i.currency IS DISTINCT FROM s.currency)"
    props = "i.properties IS DISTINCT FROM s.properties"
    other = "(" + " OR ".join(f"i.{c} IS DISTINCT FROM s.{c}" for c in OTHER_FIELDS) + ")"
    join = f"FROM {stage.stage} s LEFT JOIN {ITEMS} i ON i.seller_id = %s AND i.product_id = s.product_id"
    gone = (f"FROM {ITEMS} i WHERE i.seller_id = %s AND i.sync_state IN {_in(REMOVABLE)} "
            f"AND NOT EXISTS (SELECT 1 FROM {stage.seen} z WHERE z.product_id = i.product_id)")
    return f"{q}|{p}|{props}|{other}", join, gone


def diff(stage: StageTables, seller_id: Any) -> dict[str, Any]:
    """Counts and a bounded item list of every difference between the stage and local stock."""
    exprs, join, gone = _diff_sql(stage)
    q, p, props, other = exprs.split("|")
    changed = f"({q} OR {p} OR {props} OR {other})"
    present = f"i.id IS NOT NULL AND i.sync_state IN {_in(OVERWRITABLE)} AND i.sync_state <> 'removed_remote'"
    missing_local = f"(i.id IS NULL OR i.sync_state = '{ItemSyncState.REMOVED_REMOTE.value}')"
    pending = f"i.id IS NOT NULL AND i.sync_state NOT IN {_in(OVERWRITABLE)} AND {changed}"
    sid = seller_param(seller_id)
    counts: dict[str, int] = {}
    items: list[dict[str, Any]] = []
    limit = report_limit()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT "
            f"SUM(CASE WHEN {missing_local} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {present} AND {q} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {present} AND {p} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {present} AND {props} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {present} AND {other} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {present} AND {changed} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {pending} THEN 1 ELSE 0 END), "
            f"COUNT(*) {join}", [sid])
        row = [int(v or 0) for v in cur.fetchone()]
        (counts["missing_locally"], counts["quantity_drift"], counts["price_drift"], counts["property_drift"],
         counts["other_drift"], counts["drifted_items"], counts["pending_local"], remote_total) = row
        cur.execute(f"SELECT COUNT(*) {gone}", [sid])
        counts["missing_remotely"] = int(cur.fetchone()[0])

        cur.execute(
            f"SELECT s.product_id, s.blueprint_id, s.quantity, s.price_cents, s.currency "
            f"{join} WHERE {missing_local} ORDER BY s.product_id LIMIT %s", [sid, limit])
        for pid, bp, qty, cents, cur_ in cur.fetchall():
            items.append({"product_id": pid, "kind": "missing_locally", "blueprint_id": bp,
                          "remote": {"quantity": qty, "price_cents": cents, "currency": cur_}})
        cur.execute(f"SELECT i.product_id, i.quantity, i.price_cents {gone} ORDER BY i.product_id LIMIT %s",
                    [sid, limit])
        for pid, qty, cents in cur.fetchall():
            items.append({"product_id": pid, "kind": "missing_remotely",
                          "local": {"quantity": qty, "price_cents": cents}})
        cur.execute(
            f"SELECT s.product_id, i.sync_state, {q}, {p}, {props}, {other}, i.quantity, s.quantity, "
            f"i.price_cents, s.price_cents, i.properties, s.properties "
            f"{join} WHERE (({present}) OR ({pending})) AND {changed} ORDER BY s.product_id LIMIT %s", [sid, limit])
        for (pid, state, dq, dp, dprops, dother, lq, rq, lp, rp, lprops, rprops) in cur.fetchall():
            fields = [name for name, flag in (("quantity", dq), ("price", dp), ("properties", dprops),
                                              ("other", dother)) if flag]
            entry: dict[str, Any] = {
                "product_id": pid, "kind": "pending_local" if state not in OVERWRITABLE else "drift",
                "fields": fields, "local": {"quantity": lq, "price_cents": lp},
                "remote": {"quantity": rq, "price_cents": rp},
            }
            if dprops:
                entry["local"]["properties"] = _json(lprops)
                entry["remote"]["properties"] = _json(rprops)
            items.append(entry)
    return {"remote_total": remote_total, "counts": counts, "items": items[: 3 * limit],
            "items_truncated": any(counts[k] > limit for k in ("missing_locally", "missing_remotely", "drifted_items"))}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def reconcile_body(run: BulkRun, sync: SyncSettings, *, dry_run: bool, client: Any = None) -> dict[str, Any]:
    started = time.monotonic()
    processed = unmapped = 0
    with StageTables(keep_rows=True) as stage:
        for rows in stream_export(run, sync, client):
            unmapped += map_rows(rows)
            yield_to_webhooks()
            with transaction.atomic():
                stage.load(rows)
                processed += len(rows)
                run.heartbeat(processed)
        stage.finish_seen()
        report = diff(stage, run.seller_id)
        applied: dict[str, int] = {}
        if not dry_run:
            with transaction.atomic():
                run.heartbeat(processed)
                now = timezone.now()
                upserted = upsert_from_stage(stage, run.seller_id, now)
                applied = {"inserted": upserted.inserted, "updated": upserted.updated,
                           "removed": mark_removed(stage, run.seller_id, now)}
    return {"dry_run": dry_run, "processed": processed, "unmapped": unmapped, **report, "applied": applied,
            "seconds": round(time.monotonic() - started, 3)}


def reconcile_run(operation_id: int, *, client: Any = None) -> RunOutcome:
    op = SyncOperation.objects.filter(pk=operation_id).only("payload").first()
    dry_run = bool(op and op.payload.get("dry_run"))
    return run_operation(operation_id, lambda run, sync: reconcile_body(run, sync, dry_run=dry_run, client=client))


# ----------------------------------------------------------------------------------- schedule

def reconcile_interval() -> int:
    return int(settings.RECONCILE_INTERVAL_SECONDS)


def reconcile_spread() -> int:
    """The window beat spreads sellers over; also how often beat runs. Kept below the broker's
    longest safe countdown (CELERY_MAX_COUNTDOWN_SECONDS)."""
    return max(60, min(int(settings.CELERY_MAX_COUNTDOWN_SECONDS), int(settings.RECONCILE_SPREAD_SECONDS)))


def reconcile_offset(seller_id: Any, spread: int | None = None) -> int:
    """The seller's fixed slot within the spread window (a hash, so it never moves between beats
    and 10,000 sellers land evenly instead of all at once)."""
    digest = hashlib.blake2b(str(seller_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (spread or reconcile_spread())


def reconcile_due_sellers() -> list[Any]:
    """Connected, unpaused, already-imported sellers with no import/reconcile started within
    ``interval - spread`` (so each is reconciled about once per interval). None while the
    ``scheduled_reconcile`` kill switch is off (an incident with CardTrader: stop the bulk load)."""
    if not features.enabled("scheduled_reconcile"):
        return []
    since = timezone.now() - timedelta(seconds=max(0, reconcile_interval() - reconcile_spread()))
    recent = SyncOperation.objects.filter(seller_id=OuterRef("user_id"), kind__in=BULK_KINDS, created_at__gte=since)
    return list(
        SyncSettings.objects.filter(connection_state=ConnectionState.CONNECTED, paused=False,
                                    sync_status__in=(SyncStatus.ACTIVE, SyncStatus.ERROR))
        .exclude(token_encrypted="").filter(~Exists(recent)).values_list("user_id", flat=True)
    )


def reconcile_scheduled(seller_id: Any) -> RunOutcome | None:
    """Beat's reconcile of one seller: start it (skipped if the seller is busy, paused or gone) and
    run it here, on the bulk-sync worker that picked this task up."""
    seller = User.objects.filter(pk=seller_id).first()
    if seller is None:
        return None
    try:
        op = reconcile_start(seller=seller, actor="beat", dispatch=False)
    except SyncStartRefused:
        return None
    return reconcile_run(op.pk)
