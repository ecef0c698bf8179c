"""The webhook inbox: verify, store first, dispatch on commit; the sweeper, retention, staff's
re-apply, and the endpoint's per-day outcome counts.

Nothing is written unless the signature is right and the delivery is well formed, and a
delivery is stored *before* the 200 so CardTrader's retry is the only thing that can ever be
lost upstream of us. Applying happens later, on the high-priority queue (services/orders.py),
and only while the ``webhook_auto_apply`` feature flag is on (``auto_apply_enabled``).
"""
from __future__ import annotations

import atexit
import collections
import contextvars
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    DataError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Q
from django.utils import timezone

from brxsync import features
from brxsync.errors import ServiceError
from inventory import crypto
from inventory.models import ConnectionState, SyncSettings
from syncops import webhook_signature
from syncops.models import WebhookEvent, WebhookState
from syncops.selectors.webhooks import WebhookTarget, outcomes_key, webhook_target
from syncops.services.group_commit import GroupCommit

logger = logging.getLogger(__name__)

# The knobs live in settings (WEBHOOK_FRESHNESS_SECONDS: a day either side, because CardTrader's
# retry policy is unknown and Stripe's 300 s would drop slow retries, while the signed `time`
# still stops an old capture being replayed under a fresh id; WEBHOOK_SWEEP_AFTER_SECONDS;
# WEBHOOK_MAX_ATTEMPTS). They are read at call time, so a test or an operator can change them.

AUTO_APPLY_FLAG = "webhook_auto_apply"


def auto_apply_enabled() -> bool:
    """Whether stored deliveries are applied now (the ``webhook_auto_apply`` kill switch).

    Off: deliveries are still verified, stored and answered 200, but nothing dispatches them
    (receive, sweeper, re-apply) and an apply task already queued leaves them ``received``; the
    sweeper applies them once the flag is back on. Read per call (a dict lookup), so every
    process honours the value it was started with (brxsync/features.py).
    """
    return features.enabled(AUTO_APPLY_FLAG)


PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}

REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str, int),
    "time": (int, float),
    "cause": (str,),
    "object_class": (str,),
    "object_id": (int,),
    "mode": (str,),
}
KNOWN_CAUSES = frozenset({"order.create", "order.update", "order.destroy"})


class WebhookRejected(Exception):
    """A delivery refused with an HTTP status; nothing was stored."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    time: float
    sent_at: datetime
    cause: str
    object_class: str
    object_id: int
    mode: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Receipt:
    event_id: int | None  # None for a duplicate
    delivery_id: str
    state: str
    duplicate: bool


def parse_delivery(body: bytes) -> Delivery:
    """The delivery in ``body``, or WebhookRejected(400) naming what is wrong."""
    try:
        # orjson first (a third of the stdlib decoder's time on a 3 KB order); what it refuses
        # gets the stdlib's word, which takes more (UTF-16, a BOM, integers past 64 bits, NaN), so
        # the fast path changes no answer.
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            raise WebhookRejected(400, "malformed_json", "The body is not valid JSON.")
    if not isinstance(doc, dict):
        raise WebhookRejected(400, "invalid_delivery", "The body must be a JSON object.")
    missing = [name for name in (*REQUIRED_FIELDS, "data") if name not in doc]
    if missing:
        raise WebhookRejected(400, "invalid_delivery", "Required fields are missing.", {"missing": missing})
    wrong = [
        name
        for name, types in REQUIRED_FIELDS.items()
        # bool is an int in Python, never a valid id, time or order id.
        if isinstance(doc[name], bool) or not isinstance(doc[name], types)
    ]
    if doc["data"] is not None and not isinstance(doc["data"], dict):
        wrong.append("data")
    if wrong:
        raise WebhookRejected(400, "invalid_delivery", "Fields have the wrong type.", {"wrong_type": wrong})
    delivery_id = str(doc["id"]).strip()
    if not delivery_id or len(delivery_id) > WebhookEvent._meta.get_field("delivery_id").max_length:
        raise WebhookRejected(400, "invalid_delivery", "The delivery id is empty or too long.")
    if doc["mode"] not in ("live", "test"):
        raise WebhookRejected(400, "invalid_delivery", "mode must be 'live' or 'test'.")
    if doc["cause"] in ("order.create", "order.update") and not isinstance(doc["data"], dict):
        raise WebhookRejected(400, "invalid_delivery", "An order.create/update delivery carries the order in data.")
    try:
        sent_at = datetime.fromtimestamp(doc["time"], tz=UTC)
    except (OverflowError, ValueError, OSError):
        raise WebhookRejected(400, "invalid_delivery", "time is not a usable epoch.")
    return Delivery(
        delivery_id=delivery_id,
        time=float(doc["time"]),
        sent_at=sent_at,
        cause=doc["cause"],
        object_class=doc["object_class"],
        object_id=doc["object_id"],
        mode=doc["mode"],
        payload=doc,
    )


def _initial_state(delivery: Delivery, now: datetime) -> tuple[str, str]:
    """The state a delivery is stored in, and why when it will not be applied."""
    if delivery.mode == "test":
        return WebhookState.IGNORED, "test-mode delivery: recorded, not applied"
    if delivery.object_class != "Order" or delivery.cause not in KNOWN_CAUSES:
        return WebhookState.IGNORED, f"unhandled event {delivery.object_class}/{delivery.cause}: recorded only"
    window = settings.WEBHOOK_FRESHNESS_SECONDS
    if abs(now.timestamp() - delivery.time) > window:
        return WebhookState.STALE, f"delivery time more than {window} s from receipt"
    return WebhookState.RECEIVED, ""


@functools.lru_cache(maxsize=8)
def _insert_statements(vendor: str, names: tuple[str, ...]) -> tuple[tuple[Field, ...], str, str]:
    """(fields, guard SQL, plain insert SQL) for a WebhookEvent row with these columns (the
    embedded SQLite run), composed once per process and database vendor.

    Composing them (quoting, each field's cast type) cost ~1/3 of the endpoint's own Python time
    per delivery when it was done per request (cProfile); only the parameters change.
    """
    qn = connection.ops.quote_name
    fields = tuple(WebhookEvent._meta.get_field(name) for name in names)
    columns = ", ".join(qn(f.column) for f in fields)
    seller_meta = SyncSettings._meta
    guard = (
        f"SELECT 1 FROM {qn(seller_meta.db_table)} WHERE {qn(seller_meta.pk.column)} = %s "  # noqa: S608 - _meta
        f"AND {qn('webhook_id')} = %s AND {qn('connection_state')} = %s "
        f"AND {qn('token_encrypted')} <> '' AND {qn('shared_secret_encrypted')} = %s"
    )
    delivery_column = qn(WebhookEvent._meta.get_field("delivery_id").column)
    plain = (
        f"INSERT INTO {qn(WebhookEvent._meta.db_table)} ({columns}) "  # noqa: S608 - names from _meta
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({delivery_column}) DO NOTHING RETURNING id"
    )
    return fields, guard, plain


@functools.lru_cache(maxsize=64)
def _batch_statement(names: tuple[str, ...], size: int) -> str:
    """The PostgreSQL statement storing ``size`` deliveries, each guarded by its own seller check.

    Parameters: the rows' small columns as one JSON array of objects (``_InboxRow.doc``, unpacked
    by ``jsonb_to_recordset``), then each row's body as its own ``jsonb`` parameter, so
    PostgreSQL parses every body once, from the text that was signed. One statement per batch
    size (1 + size parameters: within psycopg's cache of converted queries, which stops at 50);
    per-row scalar parameters passed that limit at three rows, array parameters cost ~0.5 ms a
    delivery in psycopg's Python array dumping, and bodies inside the JSON array were parsed twice
    (``jsonb_to_recordset`` re-reads a ``jsonb`` field from its text). Per input row, in order,
    it answers whether the seller still held and the new id (NULL for a duplicate or a refused row).
    """
    qn = connection.ops.quote_name
    fields = [WebhookEvent._meta.get_field(name) for name in names]
    seller_meta = SyncSettings._meta
    guard_fields = (seller_meta.pk, *map(seller_meta.get_field, ("webhook_id", "shared_secret_encrypted")))
    aliases = ["body" if name == "payload" else f"c{i}" for i, name in enumerate(names)]
    columns = [*zip(("g_seller", "g_webhook", "g_secret"), guard_fields, strict=True),
               *((alias, f) for alias, f in zip(aliases, fields, strict=True) if alias != "body")]
    definitions = ", ".join(f"{alias} {f.cast_db_type(connection)}" for alias, f in columns)
    bodies = ", ".join(f"({n}, CAST(%s AS jsonb))" for n in range(1, size + 1))
    delivery_column = qn(WebhookEvent._meta.get_field("delivery_id").column)
    return (
        "WITH req AS (SELECT * FROM ROWS FROM "  # noqa: S608 - names from _meta, values are parameters
        f"(jsonb_to_recordset(CAST(%s AS jsonb)) AS ({definitions})) "
        f"WITH ORDINALITY AS r({', '.join(alias for alias, _ in columns)}, n)), "
        f"bodies (n, body) AS (VALUES {bodies}), "
        f"ok AS (SELECT req.*, bodies.body FROM req JOIN bodies ON bodies.n = req.n "
        f"JOIN {qn(seller_meta.db_table)} s "
        f"ON s.{qn(seller_meta.pk.column)} = req.g_seller AND s.{qn('webhook_id')} = req.g_webhook "
        f"AND s.{qn('connection_state')} = %s AND s.{qn('token_encrypted')} <> '' "
        f"AND s.{qn('shared_secret_encrypted')} = req.g_secret), "
        f"ins AS (INSERT INTO {qn(WebhookEvent._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"SELECT {', '.join(aliases)} FROM ok ORDER BY n "
        f"ON CONFLICT ({delivery_column}) DO NOTHING RETURNING id, {delivery_column}) "
        f"SELECT ok.n IS NOT NULL, ins.id FROM req LEFT JOIN ok ON ok.n = req.n "
        f"LEFT JOIN ins ON ins.{delivery_column} = ok.{aliases[names.index('delivery_id')]} ORDER BY req.n"
    )


@dataclass(frozen=True)
class _InboxRow:
    """One delivery on its way into the batch statement: its columns' names, its small columns
    and seller guard as a JSON object, and its body as the text to store."""

    names: tuple[str, ...]
    delivery_id: str
    doc: str
    payload: str


def _inbox_row(target: WebhookTarget, values: dict[str, Any], payload_text: str) -> _InboxRow:
    doc: dict[str, Any] = {"g_seller": target.seller_id, "g_webhook": target.webhook_id,
                           "g_secret": target.secret_ciphertext}
    for i, (name, value) in enumerate(values.items()):
        if name != "payload":
            doc[f"c{i}"] = value
    # orjson writes UUIDs and aware datetimes (RFC 3339) as PostgreSQL reads them back.
    return _InboxRow(names=tuple(values), delivery_id=values["delivery_id"], doc=orjson.dumps(doc).decode(),
                     payload=payload_text)


def _guarded_insert(target: WebhookTarget, values: dict[str, Any], payload_text: str | None) -> tuple[bool, int | None]:
    """Store the row only if the seller still is what ``target`` says: (seller held, new id).

    One statement (PostgreSQL): the seller check and ``INSERT … ON CONFLICT (delivery_id) DO
    NOTHING RETURNING id`` together, so a target from the process cache costs no round trip yet
    can never admit a delivery after a disconnect or a secret change (the check fails, the caller
    re-reads the seller), and two concurrent copies of a delivery race on the unique index:
    exactly one is stored. ``(True, None)`` is a duplicate. Outside a transaction the statement
    is shared with whatever other threads of this process are storing deliveries at the same
    moment (``_inbox``: group commit); inside one (a caller's atomic, tests) it is this thread's
    own, in that transaction.

    ``payload_text`` is the verified body as text (None when it is not plain UTF-8): on
    PostgreSQL it is the row's ``jsonb`` parameter as it is, instead of the parsed document encoded
    again (Django's per-field preparation and psycopg's quoting of a 3 KB document were ~40 % of the
    endpoint's CPU: docs/WEBHOOKS.md, "What the insert costs").
    """
    if connection.vendor != "postgresql":  # the embedded SQLite run: no data-modifying CTEs
        fields, guard, plain = _insert_statements(connection.vendor, tuple(values))
        params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
        seller_param = SyncSettings._meta.pk.get_db_prep_value(target.seller_id, connection)
        guard_params = [seller_param, target.webhook_id, ConnectionState.CONNECTED.value, target.secret_ciphertext]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(guard, guard_params)
            if cursor.fetchone() is None:
                return False, None
            cursor.execute(plain, params)
            row = cursor.fetchone()
        return True, row[0] if row else None
    row = _inbox_row(target, values, payload_text if payload_text is not None else json.dumps(values["payload"]))
    if connection.in_atomic_block:
        return _store_rows([row])[0]
    return _inbox.submit(row)


def _store_rows(rows: Sequence[_InboxRow], db: BaseDatabaseWrapper | None = None) -> list[tuple[bool, int | None]]:
    """Run the batch statement for ``rows`` on ``db`` (this thread's connection by default):
    (held, id) per row."""
    names = rows[0].names
    if any(row.names != names for row in rows):
        raise ValueError("webhook inbox: rows with different columns in one batch")
    with _server_bound_cursor(db or connection) as cursor:
        cursor.execute(_batch_statement(names, len(rows)), [
            f"[{','.join(row.doc for row in rows)}]", *(row.payload for row in rows), ConnectionState.CONNECTED.value,
        ])
        return [(bool(held), event_id) for held, event_id in cursor.fetchall()]


class _InboxConnection:
    """The process's own connection for the inbox's shared statements.

    A request thread's connection is checked out of the pool and back per request (~0.2 ms of
    CPU each time); the inbox's batches, run by whichever thread leads, use this one instead, kept
    for the life of the process, so a delivery's request touches no connection of its own. A
    Django connection (not a bare psycopg one), so SQL spans, error translation and the
    ``connection_created`` metric apply. Per pid: a forked child never uses its parent's socket
    (and never closes it either: the parent's object is kept, not finalised).
    """

    def __init__(self) -> None:
        self._db: BaseDatabaseWrapper | None = None
        self._pid = 0
        self._inherited: list[BaseDatabaseWrapper] = []

    def store(self, rows: Sequence[_InboxRow]) -> list[tuple[bool, int | None]]:
        db = self.current()
        try:
            return _store_rows(rows, db)
        except (OperationalError, InterfaceError):
            if not _broken(db):
                raise
            # The connection died (a PostgreSQL restart or failover): once more on a new one. If
            # the first attempt did commit, the rows now answer "duplicate": nothing is lost, the
            # sweeper dispatches them (their dispatched_at is set), CardTrader gets a 200.
            self.close()
            return _store_rows(rows, self.current())

    def current(self) -> BaseDatabaseWrapper:
        if self._db is None or self._pid != os.getpid():
            if self._db is not None:
                self._inherited.append(self._db)
            db = connections.create_connection(DEFAULT_DB_ALIAS)
            db.inc_thread_sharing()  # used by one leader at a time, whichever thread that is
            self._db, self._pid = db, os.getpid()
        return self._db

    def close(self) -> None:
        """Close the connection (a test database about to be dropped; after a failure)."""
        db, self._db = self._db, None
        if db is not None and self._pid != os.getpid():
            self._inherited.append(db)  # the parent's: never finalised here
        elif db is not None:
            try:
                db.close()
            except DatabaseError:
                logger.warning("webhook inbox: closing a broken connection failed", exc_info=True)


def _broken(db: BaseDatabaseWrapper) -> bool:
    raw = db.connection
    return raw is None or raw.closed or bool(getattr(raw, "broken", False))


inbox_connection = _InboxConnection()

# Deliveries stored at the same moment by this process's threads share one statement (group
# commit, services/group_commit.py). A row refused for its data (a NUL jsonb refuses) is retried
# alone, so it fails only its own request; one delivery id appears once per statement.
_inbox: GroupCommit[_InboxRow, tuple[bool, int | None]] = GroupCommit(
    inbox_connection.store, key=lambda row: row.delivery_id, split_on=(DataError,),
    max_batch=32,  # 34 parameters: psycopg caches the conversion of queries with at most 50
)


def _server_bound_cursor(db: BaseDatabaseWrapper) -> Any:
    """A Django cursor on ``db`` (execute wrappers, error translation, query log) over a psycopg
    cursor that binds parameters on the server and prepares its statement.

    The project's connections bind client-side (Django's default, which every other query relies
    on); this one statement runs on every delivery, so it is worth sending its parameters apart
    from the SQL (no quoting of the body) and having PostgreSQL parse and plan it once per
    connection. Behind a transaction-mode pooler that cannot keep prepared statements, set
    ``DB_PREPARED_STATEMENTS=false``.
    """
    db.close_if_health_check_failed()
    db.ensure_connection()
    raw = db.connection
    prepare = bool(settings.DB_PREPARED_STATEMENTS)
    if prepare and raw.prepare_threshold is None:
        # psycopg prepares nothing while the threshold is None (Django's default, for poolers),
        # not even on request; a threshold no statement reaches lets this one ask, and only it
        # (Django's client-binding cursors never prepare).
        raw.prepare_threshold = _PREPARE_ONLY_ON_REQUEST
    with db.wrap_database_errors:
        cursor = _preparing_cursor_class()(raw)
        cursor.prepare = prepare
        return db._prepare_cursor(cursor)  # Django's own wrapping, as connection.cursor() does


_PREPARE_ONLY_ON_REQUEST = 2**62


@functools.cache
def _preparing_cursor_class() -> type:
    """Built on first use: the embedded SQLite run never imports the PostgreSQL backend."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        prepare: bool | None = None

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, **kw: Any) -> Any:
            return super().execute(query, params, prepare=self.prepare if prepare is None else prepare, **kw)

    return PreparingCursor


def _body_text(body: bytes) -> str | None:
    """The verified body as the text PostgreSQL parses into ``jsonb``; None unless it is UTF-8
    without a BOM (``json.loads`` also takes UTF-16/32 and a BOM, which ``jsonb`` would refuse)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if text.startswith("\ufeff") else text


# Decrypted MAC keys by ciphertext, per process: a Fernet decrypt per delivery is wasted work
# when the secret changes once per (re)connect. Keyed by the ciphertext, so a new secret is a new
# entry; an old entry can verify nothing the guard would store (it checks the ciphertext is still
# the seller's). Short-lived and bounded so a disconnected seller's key does not linger.
MAC_KEY_TTL_SECONDS = 60.0
_MAC_KEYS_MAX = 10_000
_mac_keys: dict[str, tuple[float, str]] = {}


def _mac_key(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    now = time.monotonic()
    hit = _mac_keys.get(ciphertext)
    if hit is not None and hit[0] > now:
        return hit[1]
    key = crypto.decrypt(ciphertext)
    if len(_mac_keys) >= _MAC_KEYS_MAX:
        _mac_keys.clear()
    _mac_keys[ciphertext] = (now + MAC_KEY_TTL_SECONDS, key)
    return key


def webhook_receive(*, target: WebhookTarget, body: bytes, signature: str | None) -> Receipt:
    """Verify and store one delivery for the seller the URL names; dispatch it on commit.

    Order of checks: disconnected (410: stop sending, we hold no usable secret), signature (401),
    shape (400). Only then is anything written. ``target`` may come from the process cache: a
    refusal is then confirmed against a fresh read before it is answered, and the insert is
    guarded, so a disconnect or a new secret takes effect on the very next delivery.
    """
    for _ in range(3):
        try:
            receipt = _receive_once(target, body, signature)
        except WebhookRejected:
            if target.confirmed:
                raise
            receipt = None
        if receipt is not None:
            return receipt
        fresh = webhook_target(target.webhook_id, fresh=True)
        if fresh is None:
            raise WebhookRejected(404, "not_found", "Unknown webhook.")
        target = fresh
    # The seller's connection changed under three consecutive attempts: nothing stored, retry.
    raise WebhookRejected(503, "seller_changing", "The seller's connection is changing; retry later.")


def _receive_once(target: WebhookTarget, body: bytes, signature: str | None) -> Receipt | None:
    """One attempt with ``target``; None when the guarded insert found the seller changed."""
    if not target.connected:
        raise WebhookRejected(410, "seller_disconnected", "This seller is no longer connected to BRX Sync.")
    if not webhook_signature.verify(body, _mac_key(target.secret_ciphertext), signature):
        raise WebhookRejected(401, "invalid_signature", "Missing or invalid Signature header.")
    delivery = parse_delivery(body)
    now = timezone.now()
    state, note = _initial_state(delivery, now)
    # With auto-apply off nothing is handed off and ``dispatched_at`` stays empty, so the first
    # sweep after the flag is back on picks the delivery up at once.
    dispatch = state == WebhookState.RECEIVED and auto_apply_enabled()
    values = {
        "delivery_id": delivery.delivery_id,
        "seller": target.seller_id,
        "cause": delivery.cause[:32],
        "object_class": delivery.object_class[:32],
        "object_id": delivery.object_id,
        "mode": delivery.mode,
        "sent_at": delivery.sent_at,
        "payload": delivery.payload,
        "state": state,
        "attempts": 0,
        "error": note,
        "received_at": now,
        "dispatched_at": now if dispatch else None,
        "applied_at": None,
    }
    in_transaction = connection.in_atomic_block
    try:
        # Outside any transaction the guarded insert is one autocommitted statement (no BEGIN /
        # COMMIT round trips) on the inbox's connection; inside one (tests, a caller's atomic) a
        # savepoint keeps a refused row from poisoning the caller's transaction.
        with transaction.atomic() if in_transaction else nullcontext():
            held, event_id = _guarded_insert(target, values, _body_text(body))
            if event_id is not None and dispatch:
                if in_transaction:
                    transaction.on_commit(lambda: hand_off.submit(event_id))
                else:
                    # Already committed. (on_commit would open this thread's connection, a pool
                    # checkout and return, only to learn it is in autocommit.)
                    hand_off.submit(event_id)
    except DataError:
        # e.g. a NUL character, which PostgreSQL's jsonb refuses: nothing was stored.
        raise WebhookRejected(400, "invalid_delivery", "The payload cannot be stored (bad characters or range).")
    if not held:
        return None
    return Receipt(event_id=event_id, delivery_id=delivery.delivery_id, state=state, duplicate=event_id is None)


class _HandOff:
    """A per-process background publisher, so no webhook response waits on the broker.

    With Redis unreachable a publish takes seconds (client retries); CardTrader's request must
    not. The delivery is already committed, so anything this drops — a full queue, a broker
    marked down after a failure, a process that dies with items queued — the sweeper re-sends.
    Started lazily and per pid, so gunicorn's forked workers each get their own thread.

    The publisher is woken once per message, not once per delivery: a request appends to a deque
    and sets an event only when none is set. A ``queue.Queue`` woke it on every put: 28 µs of CPU
    per delivery for the hand-over alone, now ~12 µs (``bench/handoff_bench.py``).

    Each delivery travels with a copy of its request's context (``contextvars``: the trace and
    the bound log context), and a message is published inside its first delivery's: the apply
    task then continues that request's trace and carries its request id, as tasks enqueued on
    the request thread do. Deliveries sharing the message are named in the task's arguments.
    """

    MAX_QUEUED = 10_000
    DOWN_FOR_SECONDS = 5.0

    def __init__(self) -> None:
        self._pid = 0
        self._items: collections.deque[tuple[int, contextvars.Context]] = collections.deque()
        self._queued = threading.Event()  # something waits: start a linger
        self._full = threading.Event()  # a whole message waits: end the linger early
        self._lock = threading.Lock()
        self._down_until = 0.0

    def submit(self, event_id: int) -> None:
        if time.monotonic() < self._down_until:
            return  # broker known down: the sweeper will dispatch it
        self._ensure_thread()
        items = self._items
        if len(items) >= self.MAX_QUEUED:
            logger.warning("webhook hand-off queue full; delivery %s left to the sweeper", event_id)
            return
        items.append((event_id, contextvars.copy_context()))  # a deque's append is thread-safe
        # Event.is_set is a plain read; set() takes a lock and wakes a waiter, so only the first
        # delivery of a linger and the one that fills a message pay for it.
        if len(items) >= APPLY_BATCH:
            if not self._full.is_set():
                self._full.set()
        elif not self._queued.is_set():
            self._queued.set()

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._items = collections.deque()
                self._queued, self._full = threading.Event(), threading.Event()
                threading.Thread(target=self._run, name="webhook-hand-off", daemon=True).start()
                atexit.register(self.flush)
                self._pid = os.getpid()

    def flush(self, timeout: float = 2.0) -> int:
        """Publish what is queued now, on the caller's thread; the number of deliveries published.

        Run at exit (registered with the thread): a web process stopped by SIGTERM on a deploy
        would otherwise leave the deliveries of its last linger to the sweeper, seconds later
        (``WEBHOOK_SWEEP_AFTER_SECONDS``). Bounded, so it cannot eat the server's graceful
        timeout: it stops at ``timeout`` or at the first message the broker refuses, and the
        sweeper has the rest, as for any failed hand-off.
        """
        if self._pid != os.getpid():
            return 0  # not this process's thread, nor its deliveries
        deadline = time.monotonic() + timeout
        published = 0
        while time.monotonic() < deadline:
            chunk = self._take(APPLY_BATCH)
            if not chunk or not self._publish(chunk):
                break
            published += len(chunk)
        return published

    def _take(self, n: int) -> list[tuple[int, contextvars.Context]]:
        """Up to ``n`` queued deliveries, oldest first (the thread and ``flush`` may both be taking)."""
        taken: list[tuple[int, contextvars.Context]] = []
        for _ in range(n):
            try:
                taken.append(self._items.popleft())
            except IndexError:
                break
        return taken

    def _publish(self, chunk: list[tuple[int, contextvars.Context]]) -> bool:
        """One apply message, published in its first delivery's context; False when the broker is
        down or refused it (then it is marked down for a while: the sweeper dispatches)."""
        if time.monotonic() < self._down_until or not chunk[0][1].run(
                dispatch_apply, [event_id for event_id, _ in chunk]):
            self._down_until = max(self._down_until, time.monotonic() + self.DOWN_FOR_SECONDS)
            return False
        return True

    def _run(self) -> None:
        items, queued, full = self._items, self._queued, self._full
        while True:
            # A publish through Celery costs ~0.6–2.5 ms of this process's CPU (measured; more
            # than the rest of the request), so deliveries arriving within WEBHOOK_HANDOFF_LINGER_MS
            # of each other share one message: one publish per delivery at a trickle, one per
            # APPLY_BATCH under load, for at most that much more delivery → stock time.
            queued.wait()
            queued.clear()
            linger = settings.WEBHOOK_HANDOFF_LINGER_MS / 1000
            full.clear()
            if linger > 0 and len(items) < APPLY_BATCH:
                full.wait(linger)
            # Whole messages when a batch filled up (the rest start their own linger); all that
            # waited when the linger ran out; one per message with no linger at all.
            waiting = len(items)
            take = 1 if linger <= 0 else waiting if waiting < APPLY_BATCH else waiting - waiting % APPLY_BATCH
            taken = self._take(take)
            if items:
                queued.set()
            for start in range(0, len(taken), APPLY_BATCH):
                self._publish(taken[start:start + APPLY_BATCH])


hand_off = _HandOff()

# Deliveries per apply message at most. The worker applies a message's deliveries in one
# transaction per seller (one by one if that fails), so a batch shares the broker message and the
# task's ~10 statements. A publish costs the web process ~0.5 ms of CPU whatever its size, and at
# 8 the hand-off still took ~0.07 of the webhook / trivial throughput ratio at saturation; 32 cuts
# the publishes per delivery four-fold (with brxsync/broker.py: +0.02-0.03 of the ratio, A/B in
# docs/BENCHMARKS.md, "Tenth session"). Messages this full come only under load
# (at 100 deliveries/s the linger closes them at ~5); the worker's processes then all have messages.
APPLY_BATCH = 32


def dispatch_apply(event_ids: list[int]) -> bool:
    """Publish apply tasks (APPLY_BATCH deliveries per message); False (logged, never raised)
    when the broker refused one.

    The deliveries are stored, so a failed hand-off only delays them until the sweeper runs.
    A short retry lets kombu replace a pooled connection a Redis restart left dead (with no
    retry at all every later publish on it would fail); callers are off the request path.
    With auto-apply off nothing is published (True: nothing failed; the sweeper sends them
    once the flag is back on).
    """
    from syncops.tasks.webhooks import webhook_apply

    if not auto_apply_enabled():
        return True
    for start in range(0, len(event_ids), APPLY_BATCH):
        chunk = list(event_ids[start:start + APPLY_BATCH])
        try:
            # argsrepr: Celery's saferepr of the arguments was ~1/8 of a publish; a list of ints
            # needs no safety (same text in Flower and the worker's log).
            webhook_apply.apply_async(args=[chunk], retry=True, retry_policy=PUBLISH_RETRY,
                                      argsrepr=repr((chunk,)), kwargsrepr="{}")
        except Exception:
            logger.warning("webhooks %s: broker hand-off failed; the sweeper will retry", chunk, exc_info=True)
            return False
    return True


def webhook_sweep(*, older_than_seconds: int | None = None, limit: int = 1000) -> int:
    """Re-dispatch stored deliveries still not applied; give up on ones that keep failing.

    Claims rows with SKIP LOCKED so two beats never dispatch the same row twice in one pass, and
    stamps ``dispatched_at`` so a row is re-sent at most once per ``older_than_seconds``. With
    auto-apply off it does nothing (no dispatch, no attempts spent, nobody marked failed): the
    backlog waits, and the first sweeps after the flag is back on apply it, ``limit`` per pass.
    """
    if not auto_apply_enabled():
        return 0
    if older_than_seconds is None:
        older_than_seconds = settings.WEBHOOK_SWEEP_AFTER_SECONDS
    max_attempts = settings.WEBHOOK_MAX_ATTEMPTS
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    due = Q(dispatched_at__lt=cutoff) | Q(dispatched_at__isnull=True, received_at__lt=cutoff)
    with transaction.atomic():
        rows = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(due, state=WebhookState.RECEIVED)
            .order_by("id")
            .values_list("id", "attempts")[:limit]
        )
        exhausted = [pk for pk, attempts in rows if attempts >= max_attempts]
        retry = [pk for pk, attempts in rows if attempts < max_attempts]
        if exhausted:
            WebhookEvent.objects.filter(id__in=exhausted).update(state=WebhookState.FAILED)
        if retry:
            WebhookEvent.objects.filter(id__in=retry).update(dispatched_at=now)
            transaction.on_commit(lambda: dispatch_apply(retry))
    return len(retry)


def webhook_prune(*, days: int | None = None, batch: int = 5000) -> int:
    """Delete applied / ignored / stale deliveries older than the retention; keep failed ones.

    Failed (and still-received) deliveries stay until staff act on them. Deleted in batches so
    a large backlog never holds one long lock on the inbox.
    """
    keep_days = settings.WEBHOOK_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=keep_days)
    prunable = WebhookEvent.objects.filter(
        state__in=(WebhookState.APPLIED, WebhookState.IGNORED, WebhookState.STALE), received_at__lt=cutoff
    )
    total = 0
    while True:
        ids = list(prunable.order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return total
        total += WebhookEvent.objects.filter(id__in=ids).delete()[0]


class WebhookNotFailed(ServiceError):
    """Only failed deliveries are re-applied; others are applied, pending or records only."""

    status = 409
    code = "delivery_not_failed"

    def __init__(self, event: WebhookEvent) -> None:
        super().__init__(f"delivery {event.delivery_id} is {event.state}, not failed",
                         {"delivery_id": event.delivery_id, "state": event.state})
        self.event = event


@transaction.atomic
def webhook_reapply(*, event_id: int) -> WebhookEvent:
    """Staff's "re-apply": put a failed delivery back to ``received`` and dispatch it after commit.

    A delivery ends ``failed`` when applying it kept raising (the sweeper gave up after
    ``WEBHOOK_MAX_ATTEMPTS``), e.g. during a database incident. Once the cause is fixed it goes
    to the same apply task the inbox uses (``dispatch_apply`` → ``orders.webhook_events_apply``),
    through the order ledger, so re-applying a delivery whose order a later delivery already
    applied moves no stock twice. Attempts restart at 0; the old error stays in the admin log
    entry the caller writes. With auto-apply off it is reset but not dispatched: the sweeper
    applies it once the flag is back on.
    """
    event = WebhookEvent.objects.select_for_update().get(pk=event_id)
    if event.state != WebhookState.FAILED:
        raise WebhookNotFailed(event)
    event.state = WebhookState.RECEIVED
    event.attempts = 0
    event.error = ""
    event.dispatched_at = None
    event.save(update_fields=["state", "attempts", "error", "dispatched_at"])
    transaction.on_commit(lambda: dispatch_apply([event.pk]), robust=True)
    return event


# --- the endpoint's outcomes per day (dashboard) ----------------------------------------------

# After Redis fails, counting is skipped for this long: a delivery's answer must never wait on
# a dashboard figure (the Prometheus counter still counts every outcome).
OUTCOMES_DOWN_FOR_SECONDS = 5.0
OUTCOMES_KEEP_SECONDS = 8 * 86400  # a week of days, plus the one in progress
_outcomes_down_until = 0.0


def webhook_outcome_count(result: str, reason: str = "", *, now: datetime | None = None) -> None:
    """Count one endpoint answer that stored no row in today's (UTC) Redis hash: ``duplicate`` or
    ``rejected:<error code>``.

    Rejections and duplicates store no row (nothing is written before a delivery is verified;
    a duplicate hits the unique index), so this is the only trace of them the dashboard can read
    across processes; the Prometheus counter is per process and since start. An ``accepted``
    delivery *is* a row (``selectors.webhooks.deliveries_by_state`` counts them), so the hot path
    pays nothing here (a count costs ~0.2 ms of CPU, measured). One pipelined round trip
    (HINCRBY + EXPIRE) on the cache's Redis; a failure is logged and counting pauses for a few
    seconds, so answers do not keep waiting on a Redis that is down.
    """
    global _outcomes_down_until
    if result == "accepted" or time.monotonic() < _outcomes_down_until:
        return
    from django_redis import get_redis_connection

    field = f"{result}:{reason}" if reason else result
    key = outcomes_key((now or timezone.now()).date())
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        pipe.hincrby(key, field, 1)
        pipe.expire(key, OUTCOMES_KEEP_SECONDS)
        pipe.execute()
    except Exception:
        _outcomes_down_until = time.monotonic() + OUTCOMES_DOWN_FOR_SECONDS
        logger.warning("webhook outcome count failed; not counting for %s s", OUTCOMES_DOWN_FOR_SECONDS,
                       exc_info=True)
