"""The machinery import and reconcile share: stream the export, map blueprints, stage, upsert.

- ``export_chunks`` reads ``GET /products/export`` in a producer thread and hands over chunks of
  ready-to-write rows (deduplicated by product id) through a small bounded queue, so parsing the
  next chunk overlaps with PostgreSQL writing this one (COPY and the upsert release the GIL).
  Memory stays at a few chunks whatever the inventory size.
- ``map_rows`` fills in the Ebartex print (table, id) with one batched lookup per chunk.
- ``StageTables`` owns the session's temporary tables: a ``stage`` table that a chunk is COPYed
  into (psycopg 3 ``cursor.copy``; executemany elsewhere) and a ``seen`` table of every product id
  the export contained, so "absent from the export" is one anti-join, not a 250k Python set.
- ``upsert_from_stage`` is one ``INSERT ... SELECT ... ON CONFLICT (seller_id, product_id) DO UPDATE
  ... WHERE <something changed>``: unchanged rows are not rewritten (a second import writes
  nothing), and items with a local change still waiting to be pushed are left alone (their push,
  then the next reconcile, settles them) so an import never silently discards a seller's edit.
- ``mark_removed`` flags in-sync items CardTrader no longer lists as ``removed_remote`` with
  quantity 0 (CardTrader deletes a product whose stock reaches 0, and it is the stock authority).

Only a *complete* export may mark anything removed: the stream raises if it ends early, and the
callers call ``mark_removed`` only after the last chunk.
"""
# ruff: noqa: S608 - table and column names below are our own constants or generated ids, never input
from __future__ import annotations

import queue
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice
from operator import itemgetter
from typing import Any

from django.db import DataError, IntegrityError, connection, connections, transaction
from django.utils import timezone
from psycopg.types.json import set_json_dumps

from inventory.catalogue_mapping import map_blueprints
from inventory.models import BlueprintName, InventoryItem, ItemSyncState
from syncops.services.stage_rows import (
    BODY_COLUMNS,
    COPY_SIGNATURE,
    COPY_TRAILER,
    COPY_TYPES,
    INT_BOUNDS,
    MAPPED_COLUMNS,
    STAGE_COLUMNS,
    Row,
    decode_chunk,
    encode_value,
    field_count,
)
from syncops.services.yielding import yield_to_webhooks

ITEMS = InventoryItem._meta.db_table


def seller_param(seller_id: Any) -> Any:
    """The seller id as this database stores it in raw SQL (a uuid on PostgreSQL; 32 hex digits,
    no dashes, on SQLite, where a dashed string would silently match nothing or break the FK)."""
    field = InventoryItem._meta.get_field("seller").target_field
    return field.get_db_prep_value(seller_id if isinstance(seller_id, uuid.UUID) else uuid.UUID(str(seller_id)),
                                   connection)

# Compared to decide whether an existing row changed (everything CardTrader owns).
COMPARED = tuple(c for c in STAGE_COLUMNS if c != "product_id")
# Local states an import/reconcile may overwrite; pending_push / pending_delete carry a local
# change on its way to CardTrader and are left for the push (and the next reconcile).
OVERWRITABLE = (ItemSyncState.IN_SYNC.value, ItemSyncState.CONFLICT.value, ItemSyncState.REMOVED_REMOTE.value)
REMOVABLE = (ItemSyncState.IN_SYNC.value, ItemSyncState.CONFLICT.value)

_NAME = STAGE_COLUMNS.index("name")
_BP = STAGE_COLUMNS.index("blueprint_id")
_PRINT = STAGE_COLUMNS.index("print_id")
_TABLE = STAGE_COLUMNS.index("print_table")
_DONE = object()


# COPY's per-column types (``stage_rows.COPY_TYPES``), so psycopg picks each dumper once, not per
# value. COPY goes in PostgreSQL's binary format (``copy_rows``): the server then reads integers,
# booleans, uuids and timestamps as they are instead of parsing their text (~15 % of a first
# import's backend CPU). ``properties`` is already JSON text; it goes as jsonb's binary form (a
# version byte + the text).
_BOUNDED = tuple((i, itemgetter(i), *INT_BOUNDS[t]) for i, t in enumerate(COPY_TYPES) if t in INT_BOUNDS)


def _json_as_is(text: str) -> str:
    return text


def check_int_ranges(rows: list[Row]) -> None:
    """Refuse a chunk whose integer column holds a value its column cannot.

    Text COPY left that to PostgreSQL ("out of range for type integer"); in binary COPY psycopg's
    int4 dumper keeps the low 32 bits and sends them, so 2**32 + 5 would be stored as 5. Checked per
    column with C-level min/max over the chunk (~2 ms per 5,000 rows); zeros and NULLs are dropped
    by ``filter(None, ...)``, both being in range.
    """
    for i, get, low, high in _BOUNDED:
        values = list(filter(None, map(get, rows)))
        if values and (min(values) < low or max(values) > high):
            bad = next(r for r in rows if r[i] is not None and not low <= r[i] <= high)
            raise DataError(f"product {bad[0]}: {STAGE_COLUMNS[i]} {bad[i]} is out of range for its column")


def copy_rows(cur: Any, table: str, rows: list[Row], *, tail: Sequence[Any] = (),
              tail_columns: Sequence[str] = (), tail_types: Sequence[str] = ()) -> None:
    """Binary COPY of stage rows (``STAGE_COLUMNS``, then ``tail``'s constant values on every row)
    into ``table`` on a Django cursor (PostgreSQL). psycopg's errors come out as Django's
    (``IntegrityError`` for a duplicate key or a refused row, ``DataError`` for a bad value).
    An ``EncodedChunk`` (the parser process's output) is sent as the bytes it already is."""
    if isinstance(rows, EncodedChunk):
        copy_encoded(cur, table, rows, tail=tail, tail_columns=tail_columns, tail_types=tail_types)
        return
    check_int_ranges(rows)
    cols = ", ".join((*STAGE_COLUMNS, *tail_columns))
    raw = cur.cursor
    set_json_dumps(_json_as_is, context=raw)  # this cursor only: properties are JSON text already
    with connection.wrap_database_errors, raw.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types((*COPY_TYPES, *tail_types))
        write = copy.write_row
        if tail:
            tail = list(tail)
            for r in rows:
                write(r + tail)
        else:
            for r in rows:
                write(r)


class EncodedChunk:
    """A chunk of deduplicated stage rows as binary COPY data, made by the parser process
    (``export_child``; layout in ``stage_rows``). Written like a list of rows: ``map_rows``,
    ``ChunkWriter.write`` and ``StageTables.load`` take either (PostgreSQL only).

    What the parser cannot know, the print id and table from the catalogue, is spliced in behind
    each row's body by ``copy_data`` (~0.5 µs a row), with any constant columns of a first import.
    """

    __slots__ = ("bodies", "bps", "mapping", "n", "names", "offsets", "seen")

    def __init__(self, data: bytes) -> None:
        self.n, self.offsets, self.bps, self.bodies, self.seen, self.names = decode_chunk(data)
        self.mapping: dict[int, tuple[str, int]] = {}

    def __len__(self) -> int:
        return self.n

    def map(self) -> int:
        """Look up the chunk's blueprints (one batched lookup). Returns how many rows stay unmapped."""
        counts = Counter(self.bps)
        self.mapping = map_blueprints(set(counts))
        return sum(n for bp, n in counts.items() if self.mapping.get(bp) is None)

    def copy_data(self, tail: bytes = b"", tail_fields: int = 0) -> bytes:
        """The whole COPY stream: signature, each row (field count, body, print id, print table,
        ``tail``), trailer. Columns: ``BODY_COLUMNS``, ``MAPPED_COLUMNS``, then the tail's."""
        head = field_count(len(BODY_COLUMNS) + len(MAPPED_COLUMNS) + tail_fields)
        if not self.n:
            return COPY_SIGNATURE + COPY_TRAILER
        # What follows each body: its mapping, the tail, and the NEXT row's field count (one piece
        # per row to join instead of three); the last row's trailing field count is cut off.
        unmapped = encode_value(None, "int8") + encode_value("", "text") + tail + head
        after = {bp: encode_value(ref[1], "int8") + encode_value(ref[0], "text") + tail + head
                 for bp, ref in self.mapping.items() if ref is not None}
        bodies, offsets = self.bodies, self.offsets
        parts = list(chain.from_iterable(zip(
            map(bodies.__getitem__, map(slice, offsets, islice(offsets, 1, None))),
            [after.get(bp, unmapped) for bp in self.bps], strict=True,
        )))
        parts[-1] = parts[-1][:-len(head)]
        return b"".join((COPY_SIGNATURE, head, *parts, COPY_TRAILER))


def copy_encoded(cur: Any, table: str, chunk: EncodedChunk, *, tail: Sequence[Any] = (),
                 tail_columns: Sequence[str] = (), tail_types: Sequence[str] = ()) -> None:
    """``copy_rows`` for an ``EncodedChunk``: one ``write`` of ready bytes, no per-row Python."""
    cols = ", ".join((*BODY_COLUMNS, *MAPPED_COLUMNS, *tail_columns))
    tail_bytes = b"".join(encode_value(v, t, column=c) for v, t, c in zip(tail, tail_types, tail_columns, strict=True))
    data = chunk.copy_data(tail_bytes, len(tail_columns))
    with connection.wrap_database_errors, cur.cursor.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(data)


def export_chunks(rows: Iterator[Any], chunk_size: int, *, prefetch: int = 2,
                  on_idle: Callable[[], None] | None = None, idle_seconds: float = 10.0,
                  prechunked: bool = False) -> Iterator[list[Row] | EncodedChunk]:
    """Chunks of stage rows from ``rows`` (the client's export iterator with ``convert=export_row``),
    parsed in a producer thread. ``prechunked``: ``rows`` yields whole chunks already (the parser
    process's ``EncodedChunk``s), passed on as they come.

    Exceptions of the stream (CardTrader errors, limiter waits, a truncated body) are re-raised
    here, in the consumer. If the consumer stops early the producer is told to stop and the
    export's connection is closed. ``on_idle`` runs every ``idle_seconds`` the consumer waits (a
    slow export must still heartbeat, or its lease would expire before the first byte).
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            if prechunked:
                for item in rows:
                    if not put(item):
                        return
                put(_DONE)
                return
            chunk: dict[int, Row] = {}
            for row in rows:
                chunk[row[0]] = row
                if len(chunk) >= chunk_size:
                    if not put(list(chunk.values())):
                        return
                    chunk = {}
            if chunk and not put(list(chunk.values())):
                return
            put(_DONE)
        except BaseException as exc:
            put(exc)
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="export-producer", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = q.get(timeout=idle_seconds)
            except queue.Empty:
                if on_idle is not None:
                    on_idle()
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def map_rows(rows: list[Row] | EncodedChunk) -> int:
    """Fill print_id / print_table in place (one batched lookup). Returns how many stay unmapped."""
    if isinstance(rows, EncodedChunk):
        return rows.map()
    mapping = map_blueprints({r[_BP] for r in rows})
    unmapped = 0
    for r in rows:
        ref = mapping.get(r[_BP])
        if ref is None:
            unmapped += 1
        else:
            r[_TABLE], r[_PRINT] = ref
    return unmapped


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0

    def add(self, other: UpsertCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated


class StageTables:
    """Temporary tables of one run on this connection: ``stage`` (rows) and ``seen`` (ids).

    ``keep_rows=False`` (import): the stage empties at each commit, a chunk at a time.
    ``keep_rows=True`` (reconcile): the whole export stays staged for the diff.
    Use as a context manager; the tables are dropped on exit (and die with the session anyway).
    """

    def __init__(self, *, keep_rows: bool) -> None:
        suffix = uuid.uuid4().hex[:12]
        self.stage = f"brx_stage_{suffix}"
        self.seen = f"brx_seen_{suffix}"
        self.keep_rows = keep_rows
        self.postgres = connection.vendor == "postgresql"

    def __enter__(self) -> StageTables:
        jsontype = "jsonb" if self.postgres else "text"
        on_commit = "" if self.keep_rows or not self.postgres else " ON COMMIT DELETE ROWS"
        with connection.cursor() as cur:
            cur.execute(
                f"CREATE TEMPORARY TABLE {self.stage} ("
                " product_id bigint NOT NULL, blueprint_id integer NOT NULL, print_id bigint NULL,"
                " print_table varchar(32) NOT NULL, name varchar(255) NOT NULL, game_id integer NULL,"
                " category_id integer NULL, expansion_id integer NULL, quantity integer NOT NULL,"
                f" price_cents integer NOT NULL, currency varchar(3) NOT NULL, properties {jsontype} NOT NULL,"
                f" description text NOT NULL, user_data_field text NOT NULL, graded boolean NOT NULL){on_commit}"
            )
            # No key while ids are appended (nothing per row; a repeated product id is harmless to
            # NOT EXISTS): finish_seen indexes it once, when it is complete.
            cur.execute(f"CREATE TEMPORARY TABLE {self.seen} (product_id bigint NOT NULL)")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            with connection.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {self.stage}")
                cur.execute(f"DROP TABLE IF EXISTS {self.seen}")
        except Exception:  # noqa: S110 - the session's end drops them anyway; never mask the real error
            pass

    # ------------------------------------------------------------------ writing rows

    def load(self, rows: list[Row]) -> None:
        """Stage rows (COPY on PostgreSQL). Call inside a transaction. A kept stage (reconcile) fills
        ``seen`` from itself at the end; an import records ids with ``add_seen``."""
        with connection.cursor() as cur:
            if not self.keep_rows:  # normally already empty (ON COMMIT DELETE ROWS), but not in one long transaction
                cur.execute(f"DELETE FROM {self.stage}")
            if self.postgres:
                _async_commit(cur)
                copy_rows(cur, self.stage, rows)
            else:
                cols = ", ".join(STAGE_COLUMNS)
                marks = ", ".join(["%s"] * len(STAGE_COLUMNS))
                cur.executemany(f"INSERT INTO {self.stage} ({cols}) VALUES ({marks})", rows)

    def add_seen(self, ids: list[int] | bytes) -> None:
        """Remember product ids the export contained (an import, chunk by chunk; its rows may be
        written on other connections, which cannot see this session's temporary tables). ``bytes``
        are the ids as COPY text already (``EncodedChunk.seen``; PostgreSQL)."""
        with connection.cursor() as cur:
            if self.postgres:
                sql = f"COPY {self.seen} (product_id) FROM STDIN"
                with connection.wrap_database_errors, cur.cursor.copy(sql) as copy:
                    copy.write(ids if isinstance(ids, bytes) else "".join(f"{i}\n" for i in ids))
            else:
                cur.executemany(f"INSERT INTO {self.seen} (product_id) VALUES (%s)", [(i,) for i in ids])

    def finish_seen(self) -> None:
        """Fill ``seen`` from a kept stage (reconcile) once, index it, and give the planner its size.

        The index keeps ``mark_removed``'s anti-join cheap whatever the planner believes about the
        seller's stock: with the stock table's statistics older than the seller's rows (autovacuum
        behind, or off) it estimated one row and chose a nested loop over an unindexed ``seen``,
        seen-size × stock-size comparisons (a 30,000-product re-import spent ~50 s there)."""
        with connection.cursor() as cur:
            if self.keep_rows:
                cur.execute(self._seen_sql())
            if self.postgres:  # a temporary table has no statistics until analysed
                cur.execute(f"CREATE INDEX ON {self.seen} (product_id)")
                cur.execute(f"ANALYZE {self.seen}")

    def _seen_sql(self) -> str:
        return f"INSERT INTO {self.seen} (product_id) SELECT product_id FROM {self.stage}"


def _async_commit(cur: Any) -> None:
    """A chunk's commit need not wait for its WAL flush: if PostgreSQL crashed, the lost tail of
    chunks would be redone by the retry (the write is idempotent), and the run's outcome is
    committed synchronously, which flushes every chunk before it."""
    cur.execute("SET LOCAL synchronous_commit TO OFF")


# What a first import's COPY adds after the stage columns of each row (same values as the upsert's).
_NEW_TAIL = ("seller_id", "sync_state", "version", "last_synced_at", "created_at", "updated_at")
_NEW_TAIL_TYPES = ("uuid", "text", "int4", "timestamptz", "timestamptz", "timestamptz")


def copy_new_items(rows: list[Row], seller_id: Any, now: datetime) -> None:
    """COPY rows straight into the stock table: a seller's first import, nothing to conflict with.

    PostgreSQL only, inside the caller's transaction. COPY writes heap pages in batches (one WAL
    record per page instead of one per row) and skips the stage, the upsert's conflict probe and its
    speculative insertion. The unique (seller, product_id) key still guards: a product id that is
    already there raises ``IntegrityError`` (the caller falls back to the upsert), so a first import
    can never duplicate a row.
    """
    seller = seller_id if isinstance(seller_id, uuid.UUID) else uuid.UUID(str(seller_id))
    with connection.cursor() as cur:
        _async_commit(cur)
        copy_rows(cur, ITEMS, rows, tail=(seller, ItemSyncState.IN_SYNC.value, 1, now, now, now),
                  tail_columns=_NEW_TAIL, tail_types=_NEW_TAIL_TYPES)


NAMES = BlueprintName._meta.db_table


def register_names(rows: list[Row] | set[tuple[int, str]], known: set[tuple[int, str]]) -> int:
    """Add the chunk's (blueprint, name) pairs not in ``known`` to the name table, in a statement of
    their own, and remember them in ``known``. PostgreSQL only; returns how many were sent.

    The stock table's insert trigger adds the same pairs anyway (migration inventory/0005); doing
    it first, outside the chunk's transaction, keeps two writers from waiting on each other: a pair
    a writer inserted stays locked until its transaction ends, and the other writer's trigger
    inserting the same pair would wait for the whole chunk to commit. Committed pairs cost the
    trigger one index probe and no wait. Sorted, like the trigger, so concurrent inserts of
    overlapping pairs never deadlock. Called outside a transaction (autocommit), or inside the
    caller's, where nothing runs alongside. ``rows`` may be the pairs themselves.
    """
    pairs = (rows if isinstance(rows, set) else {(r[_BP], r[_NAME]) for r in rows if r[_NAME]}) - known
    if not pairs:
        return 0
    bps, names = zip(*pairs, strict=True)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {NAMES} (blueprint_id, name) SELECT * FROM unnest(%s::int[], %s::text[]) "
            "ORDER BY 1, 2 ON CONFLICT DO NOTHING",
            [list(bps), list(names)],
        )
    known |= pairs
    return len(pairs)


def _is_unique_violation(exc: IntegrityError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "23505"


def _changed_predicate(target: str, source: str) -> str:
    parts = [f"{target}.{c} IS DISTINCT FROM {source}.{c}" for c in COMPARED]
    parts.append(f"{target}.sync_state IS DISTINCT FROM '{ItemSyncState.IN_SYNC.value}'")
    return "(" + " OR ".join(parts) + ")"


def upsert_from_stage(stage: StageTables, seller_id: Any, now: datetime, *, where: str = "") -> UpsertCounts:
    """Insert new products and update changed ones from the stage, set-based, in one statement.

    ``where`` narrows the staged rows (reconcile applies only what its diff selected).
    """
    cols = ", ".join(STAGE_COLUMNS)
    src_cols = ", ".join(f"s.{c}" for c in STAGE_COLUMNS)
    states = ", ".join(f"'{s}'" for s in OVERWRITABLE)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in COMPARED)
    insert = (
        f"INSERT INTO {ITEMS} (seller_id, {cols}, sync_state, version, last_synced_at, created_at, updated_at) "
        f"SELECT %s, {src_cols}, '{ItemSyncState.IN_SYNC.value}', 1, %s, %s, %s FROM {stage.stage} s "
        f"WHERE true {where} "
        f"ON CONFLICT (seller_id, product_id) DO UPDATE SET {sets}, "
        f"sync_state = '{ItemSyncState.IN_SYNC.value}', version = {ITEMS}.version + 1, "
        f"last_synced_at = EXCLUDED.last_synced_at, updated_at = EXCLUDED.updated_at "
        f"WHERE {ITEMS}.sync_state IN ({states}) AND {_changed_predicate(ITEMS, 'EXCLUDED')}"
    )
    params = [seller_param(seller_id), now, now, now]
    with connection.cursor() as cur:
        if stage.postgres:
            cur.execute(
                f"WITH up AS ({insert} RETURNING (xmax = 0) AS ins) "
                "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up",
                params,
            )
            inserted, updated = cur.fetchone()
            return UpsertCounts(int(inserted), int(updated))
        cur.execute(f"SELECT count(*) FROM {ITEMS} WHERE seller_id = %s", [params[0]])
        before = cur.fetchone()[0]
        cur.execute(insert, params)
        touched = cur.rowcount
        cur.execute(f"SELECT count(*) FROM {ITEMS} WHERE seller_id = %s", [params[0]])
        inserted = cur.fetchone()[0] - before
        return UpsertCounts(inserted, max(0, touched - inserted))


def mark_removed(stage: StageTables, seller_id: Any, now: datetime, *, where: str = "") -> int:
    """Items CardTrader no longer lists → removed_remote, quantity 0. Only after a complete export."""
    removable = ", ".join(f"'{s}'" for s in REMOVABLE)
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {ITEMS} SET sync_state = '{ItemSyncState.REMOVED_REMOTE.value}', quantity = 0, "
            f"version = version + 1, last_synced_at = %s, updated_at = %s "
            f"WHERE seller_id = %s AND sync_state IN ({removable}) {where} "
            f"AND NOT EXISTS (SELECT 1 FROM {stage.seen} z WHERE z.product_id = {ITEMS}.product_id)",
            [now, now, seller_param(seller_id)],
        )
        return cur.rowcount



# ----------------------------------------------------------------------------------- writers

class ChunkWriter:
    """Writes an import's chunks: per chunk, in ONE transaction, COPY into a stage, the upsert, and
    ``heartbeat(done)`` (it renews the lease, so a run that lost its lease commits nothing more).

    PostgreSQL does most of an import's work per row (heap, four indexes; the seller is checked once per
    statement, migration inventory/0006) on one backend = one core, while the client's parsing needs
    little. With ``writers`` > 1 each writer thread has a connection, a stage and transactions of its
    own, so chunks are upserted side by side and the machine's other core works too. Rows go to writers
    a chunk at a time in export order; chunks are deduplicated, and a product id repeated in two chunks
    (never seen from CardTrader) is still one row by the unique key, whichever chunk commits last.

    ``writers`` is 1 (inline, on the caller's connection) on SQLite and inside a caller's
    transaction: other connections could not see its uncommitted rows, and its writes must roll
    back with it. Ids go to ``stage.add_seen`` on the caller's connection either way.

    ``first_import`` (the seller had no stock when the run started; PostgreSQL only): chunks are
    COPYed straight into the stock table (``copy_new_items``) instead of staged and upserted. If a
    chunk meets a row that is already there (something else created it meanwhile, or a product id
    repeats across chunks), that chunk's COPY is rolled back to a savepoint and the chunk, and every
    later one, goes through the upsert. A crash leaves committed chunks behind, so the retry is not
    a first import and upserts: no duplicates either way (the unique key decides, not this flag).
    """

    def __init__(self, stage: StageTables, seller_id: Any, *, writers: int,
                 heartbeat: Callable[[int], None] | None = None, first_import: bool = False) -> None:
        self.stage = stage
        self.seller_id = seller_id
        self.heartbeat = heartbeat
        self.first_import = first_import and stage.postgres
        self.counts = UpsertCounts()
        self.done = 0  # rows committed
        self.copied = 0  # of which COPYed straight into the stock table (first import)
        self.writers = writers if stage.postgres and not connection.in_atomic_block else 1
        self._lock = threading.Lock()
        self._names: set[tuple[int, str]] = set()  # (blueprint, name) pairs registered by this run
        self._names_lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._abort = False
        self._threads: list[threading.Thread] = []
        self._todo: queue.Queue = queue.Queue(maxsize=self.writers)

    def __enter__(self) -> ChunkWriter:
        for n in range(self.writers if self.writers > 1 else 0):
            thread = threading.Thread(target=self._work, name=f"import-writer-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is not None:
            self._abort = True  # the run is failing: chunks still queued are not written
        self._stop()

    def write(self, rows: list[Row] | EncodedChunk) -> None:
        """Hand over a chunk (blocks while every writer is busy). Raises a writer's error."""
        self._raise()
        self.stage.add_seen(rows.seen if isinstance(rows, EncodedChunk) else [r[0] for r in rows])
        if not self._threads:
            self._write(self.stage, rows)
            return
        while True:
            try:
                self._todo.put(rows, timeout=0.2)
                return
            except queue.Full:
                self._raise()

    def finish(self) -> None:
        """Wait for every chunk to be committed; raises the first writer error."""
        self._stop()
        self._raise()

    def _write(self, stage: StageTables, rows: list[Row]) -> None:
        yield_to_webhooks()  # outside the transaction: a pause holds no locks
        if stage.postgres:
            # Pairs this run has registered (committed) are skipped; two writers meeting a new pair at
            # the same moment may both send it, which ON CONFLICT DO NOTHING absorbs.
            with self._names_lock:
                if isinstance(rows, EncodedChunk):
                    todo = {pair for pair in rows.names if pair not in self._names}
                else:
                    todo = [r for r in rows if (r[_BP], r[_NAME]) not in self._names]
            if todo:
                known: set[tuple[int, str]] = set()
                register_names(todo, known)
                with self._names_lock:
                    self._names |= known
        with transaction.atomic():
            now = timezone.now()
            counts = self._copy_new(rows, now) if self.first_import else None
            if counts is None:
                stage.load(rows)
                counts = upsert_from_stage(stage, self.seller_id, now)
            with self._lock:
                self.done += len(rows)
                done = self.done
            if self.heartbeat is not None:
                self.heartbeat(done)
        with self._lock:
            self.counts.add(counts)

    def _copy_new(self, rows: list[Row], now: datetime) -> UpsertCounts | None:
        """A first import's chunk by COPY; None (and the upsert from now on) if a row was there."""
        try:
            with transaction.atomic():  # a savepoint: a clash undoes this COPY only
                copy_new_items(rows, self.seller_id, now)
        except IntegrityError as exc:
            if not _is_unique_violation(exc):
                raise
            self.first_import = False
            return None
        with self._lock:
            self.copied += len(rows)
        return UpsertCounts(inserted=len(rows))

    def _work(self) -> None:
        try:
            with StageTables(keep_rows=False) as stage:
                while True:
                    rows = self._todo.get()
                    if rows is None:
                        return
                    if not self._errors and not self._abort:
                        self._write(stage, rows)
        except BaseException as exc:  # handed to the caller's thread, raised there
            with self._lock:
                self._errors.append(exc)
            while self._todo.get() is not None:  # let a blocked write() see the error
                pass
        finally:
            connections.close_all()  # this thread's connections (one per database it used)

    def _stop(self) -> None:
        for thread in self._threads:
            if thread.is_alive():
                self._todo.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _raise(self) -> None:
        if self._errors:
            raise self._errors[0]
