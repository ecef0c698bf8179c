"""Applying CardTrader order deliveries to local stock through the order ledger.

The ledger row per (seller, order, order item) is the memory that makes every effect happen at
most once: ``decremented_at`` is set the one time stock is taken, ``restored_at`` the one time a
cancellation is settled (with nothing to give back when nothing was taken). Neither is ever
cleared, so redelivery, reordering and a re-run task after a crash cannot repeat an effect.

An order's events are applied in sequence under a per-order lock, and each apply *recomputes*
from every stored delivery of the order rather than from the one that triggered it: what an
order item should be (sold? cancelled?) is a function of the set of deliveries, not of the
order they arrived in. Rules (CARDTRADER_API.md §5, decisions in docs/WEBHOOKS.md):

- sold: a non-CardTrader-Zero order in paid/sent/arrived/done/lost/request_for_cancel (all of
  which imply payment), or a CardTrader Zero order in hub_pending/closed; with presale, only
  items whose ``hub_pending_order_id`` is the order itself. Never the merged CT0 ``paid`` order.
- An item that names another order as its ``hub_pending_order_id`` (the merged CT0 order's
  items, whose own item ids are new) is a *reference*: it has no row of its own, and its
  order's cancellation settles the rows of (hub-pending order, product) — or, if those have not
  been seen yet, leaves a settled tombstone row there so the late hub_pending never decrements.
- cancelled: a ``canceled`` snapshot or an ``order.destroy`` (whose data is empty) for the
  order; an item with ``deleted_at`` is cancelled on its own. ``request_for_cancel`` is
  recorded only: CardTrader may refuse the request and the sale then stands.

Stock moves only through one locked UPDATE per item, clamped at zero; the shortfall is recorded
as ``oversold`` with an oversell Conflict. This is a local change only: CardTrader already
knows, so nothing here writes a SyncOperation (no echo push).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Min, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from inventory.models import InventoryItem
from syncops.models import Conflict, ConflictKind, OrderLedger, WebhookEvent, WebhookState
from syncops.selectors.webhooks import order_deliveries
from syncops.services.webhooks import auto_apply_enabled

logger = logging.getLogger(__name__)

SOLD_STATES_DIRECT = frozenset({"paid", "sent", "arrived", "done", "lost", "request_for_cancel"})
SOLD_STATES_CT0 = frozenset({"hub_pending", "closed"})
CANCEL_STATES = frozenset({"canceled", "cancelled"})


class InvalidOrderPayload(ValueError):
    """A signed delivery whose order data cannot be read; recorded as failed for staff."""


@dataclass
class ItemView:
    """What the stored deliveries say about one ledger row."""

    owner_order_id: int
    order_item_id: int
    product_id: int
    quantity: int
    sold: bool = False
    cancelled: bool = False
    reference: bool = False
    last_state: str = ""


@dataclass
class OrderView:
    order_id: int
    cancelled: bool = False
    items: dict[tuple[int, int], ItemView] = field(default_factory=dict)
    bad_events: dict[int, str] = field(default_factory=dict)
    good_events: list[int] = field(default_factory=list)

    @property
    def owners(self) -> set[int]:
        return {owner for owner, _ in self.items} | {self.order_id}


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOrderPayload(f"{name} must be an integer, got {value!r}")
    return value


def _read_snapshot(order_id: int, data: dict[str, Any]) -> tuple[str, list[tuple[ItemView, bool]]]:
    """(state, [(item view, item deleted)]) for one order snapshot, or InvalidOrderPayload."""
    if _as_int(data.get("id"), "data.id") != order_id:
        raise InvalidOrderPayload(f"data.id {data.get('id')!r} is not object_id {order_id}")
    state = data.get("state")
    if not isinstance(state, str):
        raise InvalidOrderPayload("data.state is missing")
    items = data.get("order_items")
    if not isinstance(items, list):
        raise InvalidOrderPayload("data.order_items is missing")
    via_ct0 = bool(data.get("via_cardtrader_zero"))
    views: list[tuple[ItemView, bool]] = []
    for raw in items:
        if not isinstance(raw, dict):
            raise InvalidOrderPayload("an order item is not an object")
        item_id = _as_int(raw.get("id"), "order_items[].id")
        product_id = _as_int(raw.get("product_id"), "order_items[].product_id")
        quantity = _as_int(raw.get("quantity"), "order_items[].quantity")
        if quantity < 0:
            raise InvalidOrderPayload("order_items[].quantity is negative")
        hub_pending = raw.get("hub_pending_order_id")
        hub_pending = _as_int(hub_pending, "hub_pending_order_id") if hub_pending is not None else None
        own = hub_pending in (None, order_id)
        if not own:  # merged CT0 order (or a presale line of another order): never decrements here
            view = ItemView(hub_pending, item_id, product_id, quantity, reference=True, last_state=state)
        else:
            sold = state in (SOLD_STATES_CT0 if via_ct0 else SOLD_STATES_DIRECT)
            view = ItemView(order_id, item_id, product_id, quantity, sold=sold, last_state=state)
        views.append((view, raw.get("deleted_at") is not None))
    return state, views


def order_view(order_id: int, deliveries: list[dict[str, Any]]) -> OrderView:
    """Fold every stored delivery of one order (oldest CardTrader time first) into an OrderView."""
    view = OrderView(order_id=order_id)
    for delivery in deliveries:
        if delivery["object_id"] != order_id:
            continue
        if delivery["cause"] == "order.destroy":
            view.cancelled = True
            view.good_events.append(delivery["id"])
            continue
        data = (delivery["payload"] or {}).get("data")
        try:
            if not isinstance(data, dict):
                raise InvalidOrderPayload("data is not an order")
            state, items = _read_snapshot(order_id, data)
        except InvalidOrderPayload as exc:
            view.bad_events[delivery["id"]] = str(exc)
            continue
        view.good_events.append(delivery["id"])
        view.cancelled = view.cancelled or state in CANCEL_STATES
        for item, deleted in items:
            key = (item.owner_order_id, item.order_item_id)
            known = view.items.get(key)
            if known is None:
                view.items[key] = known = item
            else:  # a later snapshot: newer quantity and state, sticky flags
                known.quantity, known.product_id, known.last_state = item.quantity, item.product_id, item.last_state
                known.sold = known.sold or item.sold
            known.cancelled = known.cancelled or deleted
    for item in view.items.values():
        item.cancelled = item.cancelled or view.cancelled
    return view


def _lock_key(seller_id: Any, order_id: int) -> int:
    digest = hashlib.blake2b(f"order-ledger:{seller_id}:{order_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_orders(seller_id: Any, order_ids: set[int]) -> None:
    """Per-order advisory locks for this transaction, taken in sorted order.

    An apply locks its own order first and then, only for a merged CT0 order, the hub-pending
    originals its items name; originals never reference merged orders, so no cycle (and no
    deadlock) can form. SQLite (the embedded run) serialises writing transactions already.
    """
    if connection.vendor != "postgresql" or not order_ids:
        return
    keys = sorted({_lock_key(seller_id, oid) for oid in order_ids})
    with connection.cursor() as cursor:
        # One round trip for the whole batch (one per order cost ~8 of a batch's ~17 statements).
        # PostgreSQL evaluates a volatile target list after the sort (make_sort_input_target), so
        # the locks are taken in key order, as the loop this replaces took them.
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k ORDER BY k", [keys])
        cursor.fetchall()


# Orders of the same seller an apply takes on besides its own: pending deliveries whose own
# message has not run yet (attempts = 0), i.e. the broker's backlog. A batch's fixed cost (~10
# statements) dominates a small one: measured on 2 cores, 11–15 ms of worker CPU per delivery in
# batches of one against ~2.3 ms in batches of 8, so at 100 deliveries/s in messages of 1–2 the
# worker fell behind and a backlog built. Taking the backlog along makes a busy worker's batches
# grow with the backlog; the messages it overtook then find nothing to claim.
#
# Off by default (``WEBHOOK_DRAIN_ORDERS`` = 0) since the 8-seller stream test still ended once in
# two fresh-clone CI runs with local stock one above CardTrader's after an oversell, even with the
# barrier below: draining lets a newer order overtake an older one whose delivery is not visible
# yet, which applying messages in arrival order makes rare enough not to be seen. On again only
# once that ordering is guaranteed (docs/WEBHOOKS.md).


def _lock_pending_orders(seller_id: Any, exclude: set[int], limit: int) -> set[int]:
    """Up to ``limit`` other orders of this seller with deliveries handed to the queue and not yet
    claimed by their own message, locked for this transaction with ``pg_try_advisory_xact_lock``.

    A try-lock never waits, so this adds no lock-order constraint (no deadlock); an order another
    apply holds is skipped, so concurrent workers draining one seller's backlog take disjoint
    orders instead of queueing behind each other on the same ones. Its deliveries are read after
    the lock, like the batch's own. Deliveries already claimed (attempts > 0) are left to their own
    message and the sweeper, so one that cannot be applied is never dragged into every batch.
    """
    if connection.vendor != "postgresql" or limit <= 0:
        return set()
    waiting = WebhookEvent.objects.filter(state=WebhookState.RECEIVED, seller_id=seller_id, mode="live").exclude(
        object_id__in=exclude)
    # Never overtake an older delivery the drain may not take (claimed by a message in flight,
    # failed and waiting for a retry, not handed off yet): applied before it, a newer order can
    # find stock that older delivery was about to give back (a cancellation) and record an
    # oversell CardTrader never had. Seen as ~1 run in 3 of the 8-seller stream test.
    barrier = waiting.filter(Q(attempts__gt=0) | Q(dispatched_at__isnull=True)).aggregate(
        at=Min("received_at"))["at"]
    pending = waiting.filter(attempts=0, dispatched_at__isnull=False)
    if barrier is not None:
        pending = pending.filter(received_at__lt=barrier)
    pending = pending.order_by("received_at").values_list("object_id", flat=True)[: limit * 4]
    candidates = list(dict.fromkeys(pending))
    if not candidates:
        return set()
    by_key: dict[int, int] = {}
    for order_id in candidates:
        by_key.setdefault(_lock_key(seller_id, order_id), order_id)
    with connection.cursor() as cursor:
        # unnest keeps the array's order and LIMIT stops the scan, so the oldest free orders are
        # taken and no lock is taken beyond ``limit``.
        cursor.execute(
            "SELECT k FROM unnest(%s::bigint[]) AS k WHERE pg_try_advisory_xact_lock(k) LIMIT %s",
            [list(by_key), limit],
        )
        return {by_key[key] for (key,) in cursor.fetchall()}


@dataclass
class Stock:
    """An inventory row locked for this apply: what the ledger needs of it, nothing more."""

    pk: int
    product_id: int
    quantity: int


def _lock_stock(seller_id: Any, product_ids: set[int]) -> dict[int, Stock]:
    """Lock the seller's items for these products, in primary-key order (one lock order across
    workers: two orders sharing items queue instead of deadlocking)."""
    if not product_ids:
        return {}
    rows = (
        InventoryItem.objects.select_for_update()
        .filter(seller_id=seller_id, product_id__in=product_ids)
        .order_by("pk")
        .values_list("pk", "product_id", "quantity")
    )
    return {product_id: Stock(pk, product_id, quantity) for pk, product_id, quantity in rows}


class _StockMoves:
    """Net change per locked item, written in one statement at the end of the apply.

    Each take is already clamped to what the locked row holds (tracked here), so the net is
    exact; the UPDATE clamps at zero again as a backstop (with the check constraint).
    """

    def __init__(self) -> None:
        self.delta: dict[int, int] = {}

    def add(self, stock: Stock, change: int) -> None:
        stock.quantity += change
        self.delta[stock.pk] = self.delta.get(stock.pk, 0) + change

    def write(self) -> None:
        moves = sorted((pk, d) for pk, d in self.delta.items() if d)
        if not moves:
            return
        if connection.vendor != "postgresql":
            for pk, change in moves:
                InventoryItem.objects.filter(pk=pk).update(
                    quantity=Greatest(F("quantity") + change, 0), version=F("version") + 1
                )
            return
        table = connection.ops.quote_name(InventoryItem._meta.db_table)
        values = ", ".join(["(%s::bigint, %s::integer)"] * len(moves))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS i SET quantity = GREATEST(i.quantity + v.delta, 0), "  # noqa: S608 - _meta
                f"version = i.version + 1 FROM (VALUES {values}) AS v(id, delta) WHERE i.id = v.id",
                [x for move in moves for x in move],
            )


def _cover_shortfalls(seller_id: Any, ledger: _Ledger, stock: dict[int, Stock], moves: _StockMoves,
                      now: datetime) -> None:
    """Stock a cancellation gave back first covers sales of the same item recorded as oversold.

    Applied out of order, a later sale can find the stock that an earlier order's cancellation
    had not yet given back. That happens when the cancellation was held up by a dead worker or a
    broker outage and applied by the sweeper after the sale. The sale then took what was left and
    recorded the rest as ``oversold``, but CardTrader, which saw them in order, sold it from the
    returned stock. Handing the returned units to such shortfalls, oldest sale first, ends where
    CardTrader is instead of above it (tests/webhooks/test_worker.py found a seller 2 above after a
    kill and a broker outage). A shortfall no cancellation ever covers stays an oversell for
    staff. Safe without more locks: every apply that changes these rows holds the item's row lock,
    held here.
    """
    returned = {pk for pk, change in moves.delta.items() if change > 0}
    if not returned:
        return
    by_pk = {s.pk: s for s in stock.values()}
    short = {key: row for key, row in ledger.rows.items()
             if row.oversold and row.restored_at is None and row.item_id in returned}
    others = OrderLedger.objects.select_for_update().filter(
        seller_id=seller_id, item_id__in=returned, oversold__gt=0, restored_at__isnull=True)
    for row in others:
        key = (row.order_id, row.order_item_id)
        current = ledger.rows.get(key, row)  # this apply's copy, when it holds one, is the newer
        if current.oversold and current.restored_at is None:
            short[key] = current
    for key, row in sorted(short.items(), key=lambda kv: kv[1].pk):
        inventory = by_pk[row.item_id]
        cover = min(row.oversold, max(inventory.quantity, 0))
        if cover <= 0:
            continue
        moves.add(inventory, -cover)
        row.decremented += cover
        row.oversold -= cover
        ledger.rows[key] = row
        ledger.touch(row)
        if not row.oversold:
            _resolve_oversell(row, now, "covered by stock a cancellation applied after this sale gave back")


def _resolve_oversell(row: OrderLedger, now: datetime, note: str) -> None:
    """Resolve the open oversell conflict of this ledger row's order line (not of the order's other
    lines of the same product, which keep their own)."""
    Conflict.objects.filter(
        seller_id=row.seller_id, kind=ConflictKind.OVERSELL, order_id=row.order_id, product_id=row.product_id,
        details__order_item_id=row.order_item_id, resolved_at__isnull=True,
    ).update(resolved_at=now, resolved_note=note)


def _restore(row: OrderLedger, inventory: Stock | None, moves: _StockMoves, now: datetime) -> None:
    """Settle a cancellation on ``row``: give back what it took, once (row saved by the caller).

    What it could not take (``oversold``) is no longer owed to anyone once the line is cancelled,
    so the line's open oversell conflict is resolved: left open, staff would chase a shortfall that
    no buyer is waiting for. ``oversold`` itself stays, as the record of what happened.
    """
    give_back = row.decremented - row.restored
    if give_back and inventory is not None:
        moves.add(inventory, give_back)
    row.restored, row.restored_at = row.decremented, now
    if row.oversold:
        _resolve_oversell(row, now, "order line cancelled: the units it could not take are not owed")


def _take(seller_id: Any, row: OrderLedger, inventory: Stock | None, moves: _StockMoves, now: datetime) -> None:
    """Take ``row.quantity`` from stock, once, clamped at zero; record any shortfall."""
    wanted = row.quantity
    taken = min(wanted, max(inventory.quantity, 0)) if inventory is not None else 0
    if inventory is not None:
        # The item row is locked (FOR UPDATE in order_apply), so `taken` is exact.
        moves.add(inventory, -taken)
        if wanted > taken:
            row.oversold = wanted - taken
            Conflict.objects.create(
                seller_id=seller_id,
                kind=ConflictKind.OVERSELL,
                item_id=inventory.pk,
                product_id=row.product_id,
                order_id=row.order_id,
                details={"order_item_id": row.order_item_id, "sold": wanted, "held": taken},
            )
    row.decremented, row.decremented_at = taken, now


class _Ledger:
    """The locked ledger rows of the orders being applied, read and created set-wise."""

    def __init__(self, seller_id: Any, owners: set[int]) -> None:
        self.seller_id = seller_id
        self.rows: dict[tuple[int, int], OrderLedger] = {}
        self.dirty: set[tuple[int, int]] = set()
        self._load(owners)

    def _load(self, owners: set[int]) -> None:
        for row in OrderLedger.objects.select_for_update().filter(seller_id=self.seller_id, order_id__in=owners):
            self.rows[(row.order_id, row.order_item_id)] = row

    def ensure(self, wanted: list[OrderLedger]) -> list[OrderLedger]:
        """Insert the rows not there yet (one statement); returns the ones created."""
        missing = [r for r in wanted if (r.order_id, r.order_item_id) not in self.rows]
        if not missing:
            return []
        # The owners' advisory locks are held, so nobody else inserts these rows meanwhile;
        # ON CONFLICT DO NOTHING keeps the unique constraint the backstop rather than an error.
        if connection.vendor == "postgresql":
            created = self._insert_returning(missing)
        else:
            OrderLedger.objects.bulk_create(missing, ignore_conflicts=True)
            created = set()
        reload = {r.order_id for r in missing if (r.order_id, r.order_item_id) not in created}
        if reload:
            self._load(reload)
        return [self.rows[(r.order_id, r.order_item_id)] for r in missing]

    def _insert_returning(self, rows: list[OrderLedger]) -> set[tuple[int, int]]:
        """INSERT … ON CONFLICT DO NOTHING RETURNING the new ids: the inserted rows are ours
        (and locked by the insert), so they need no read back; a row not returned is re-read."""
        qn = connection.ops.quote_name
        fields = [f for f in OrderLedger._meta.concrete_fields if not f.primary_key]
        params: list[Any] = []
        for row in rows:
            params.extend(f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields)
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {qn(OrderLedger._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608
                f"VALUES {', '.join([one] * len(rows))} ON CONFLICT DO NOTHING RETURNING id, order_id, order_item_id",
                params,
            )
            returned = {(order_id, item_id): pk for pk, order_id, item_id in cursor.fetchall()}
        for row in rows:
            key = (row.order_id, row.order_item_id)
            if key in returned:
                row.pk = returned[key]
                row._state.adding, row._state.db = False, connection.alias
                self.rows[key] = row
        return set(returned)

    def for_product(self, order_id: int, product_id: int) -> list[OrderLedger]:
        return sorted(
            (r for (oid, _), r in self.rows.items() if oid == order_id and r.product_id == product_id),
            key=lambda r: r.pk,
        )

    def touch(self, row: OrderLedger) -> None:
        self.dirty.add((row.order_id, row.order_item_id))

    SAVED = ("decremented", "oversold", "restored", "decremented_at", "restored_at", "last_order_state", "updated_at")

    def save(self, now: datetime) -> None:
        """Write the touched rows: one ``UPDATE … FROM (VALUES …)`` (bulk_update's CASE per
        column costs far more to build than the database spends running it)."""
        rows = [self.rows[key] for key in sorted(self.dirty)]
        if not rows:
            return
        for row in rows:
            row.updated_at = now
        if connection.vendor != "postgresql":
            OrderLedger.objects.bulk_update(rows, list(self.SAVED))
            return
        qn = connection.ops.quote_name
        fields = [OrderLedger._meta.get_field(name) for name in self.SAVED]
        row_sql = "(%s::bigint, " + ", ".join(f"%s::{f.cast_db_type(connection)}" for f in fields) + ")"
        params: list[Any] = []
        for row in rows:
            params.append(row.pk)
            params.extend(f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields)
        assignments = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in fields)
        names = ", ".join(["id", *(qn(f.column) for f in fields)])
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {qn(OrderLedger._meta.db_table)} AS l SET {assignments} "  # noqa: S608 - names from _meta
                f"FROM (VALUES {', '.join([row_sql] * len(rows))}) AS v({names}) WHERE l.id = v.id",
                params,
            )


def _settle_own(ledger: _Ledger, item: ItemView, stock: dict[int, Stock], moves: _StockMoves,
                now: datetime) -> None:
    """Move one ledger row (and its item's stock) to what the deliveries say, at most once each way."""
    row = ledger.rows[(item.owner_order_id, item.order_item_id)]
    inventory = stock.get(row.product_id)
    if row.item_id is None or (inventory is not None and inventory.pk != row.item_id):
        inventory = None
    if item.cancelled:
        if row.restored_at is None:
            _restore(row, inventory, moves, now)
            ledger.touch(row)
    elif item.sold and row.decremented_at is None and row.restored_at is None:
        if any(r.restored_at is not None for r in ledger.for_product(row.order_id, row.product_id) if r is not row):
            row.restored_at = now  # its merged CT0 order was cancelled before this sale was seen
        else:
            _take(ledger.seller_id, row, inventory, moves, now)
        ledger.touch(row)
    if item.last_state and row.last_order_state != item.last_state:
        row.last_order_state = item.last_state
        ledger.touch(row)


def _settle_reference(ledger: _Ledger, item: ItemView, stock: dict[int, Stock], moves: _StockMoves,
                      now: datetime) -> None:
    """A cancelled order's line that was sold under another order: settle that order's rows.

    Matched by (hub-pending order, product), because the merged order's items carry new ids.
    """
    if not item.cancelled:
        return
    for row in ledger.for_product(item.owner_order_id, item.product_id):
        if row.restored_at is None:
            inventory = stock.get(row.product_id) if row.item_id is not None else None
            _restore(row, inventory, moves, now)
            ledger.touch(row)


def _new_rows(seller_id: Any, views: dict[int, OrderView], ledger: _Ledger, stock: dict[int, Stock],
              now: datetime) -> list[OrderLedger]:
    """Rows to create: one per own item; a settled tombstone for a cancelled reference with no
    row under its hub-pending order yet (nor one being created now), so that order's late
    hub_pending never decrements."""
    wanted = [
        OrderLedger(
            seller_id=seller_id, order_id=item.owner_order_id, order_item_id=item.order_item_id,
            product_id=item.product_id, quantity=item.quantity, item_id=_pk(stock.get(item.product_id)),
        )
        for view in views.values() for item in view.items.values() if not item.reference
    ]
    coming = {(row.order_id, row.product_id) for row in wanted}
    for order_id, view in views.items():
        for item in view.items.values():
            owner_product = (item.owner_order_id, item.product_id)
            if item.reference and item.cancelled and owner_product not in coming \
                    and not ledger.for_product(*owner_product):
                coming.add(owner_product)
                wanted.append(OrderLedger(
                    seller_id=seller_id, order_id=item.owner_order_id, order_item_id=item.order_item_id,
                    product_id=item.product_id, quantity=item.quantity, item_id=_pk(stock.get(item.product_id)),
                    restored_at=now, last_order_state=f"canceled via order {order_id}",
                ))
    return wanted


def _pk(stock: Stock | None) -> int | None:
    return stock.pk if stock is not None else None


def order_apply(*, seller_id: Any, order_id: int) -> OrderView:
    """Bring the ledger and stock in line with every stored delivery of one order."""
    return orders_apply(seller_id=seller_id, order_ids={order_id})[order_id]


def orders_apply(*, seller_id: Any, order_ids: set[int], drain: int = 0) -> dict[int, OrderView]:
    """Bring the ledger and stock in line with every stored delivery of these orders of one
    seller, in one transaction.

    Idempotent: run it any number of times, in any interleaving with other orders, and the
    ledger ends the same. Marks the deliveries it used as applied (bad ones as failed). Several
    orders share each statement (locks, reads, the ledger insert and update, the stock update),
    so a batch of deliveries costs about what one did; the per-order rules are unchanged.
    ``drain``: also take up to that many of the seller's other pending orders whose locks are free
    (``_lock_pending_orders``); their views are in the result too.
    """
    with transaction.atomic():
        _lock_orders(seller_id, order_ids)
        if drain:
            order_ids = order_ids | _lock_pending_orders(seller_id, order_ids, drain)
        deliveries: dict[int, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
        for delivery in order_deliveries(seller_id=seller_id, order_ids=order_ids):
            deliveries[delivery["object_id"]].append(delivery)
        views = {order_id: order_view(order_id, deliveries[order_id]) for order_id in sorted(order_ids)}
        owners = set().union(*(view.owners for view in views.values()))
        # Only merged CT0 orders add owners (the originals their items name); originals never
        # name merged orders, so these second locks cannot form a cycle with a single-order
        # apply. Two batches crossing here can deadlock; PostgreSQL then aborts one, whose task
        # retries (a transient OperationalError).
        _lock_orders(seller_id, owners - order_ids)
        now = timezone.now()
        stock = _lock_stock(seller_id, {item.product_id for view in views.values() for item in view.items.values()})
        moves = _StockMoves()
        ledger = _Ledger(seller_id, owners)
        for row in ledger.ensure(_new_rows(seller_id, views, ledger, stock, now)):
            if row.item_id is None and row.restored_at is None:
                Conflict.objects.create(
                    seller_id=seller_id,
                    kind=ConflictKind.UNKNOWN_PRODUCT,
                    product_id=row.product_id,
                    order_id=row.order_id,
                    details={"order_item_id": row.order_item_id, "quantity": row.quantity},
                )
        for view in views.values():
            for key in sorted(view.items):
                item = view.items[key]
                if item.reference:
                    _settle_reference(ledger, item, stock, moves, now)
                else:
                    _settle_own(ledger, item, stock, moves, now)
        _cover_shortfalls(seller_id, ledger, stock, moves, now)
        moves.write()
        ledger.save(now)
        good = [event_id for view in views.values() for event_id in view.good_events]
        if good:
            WebhookEvent.objects.filter(id__in=good, state=WebhookState.RECEIVED).update(
                state=WebhookState.APPLIED, applied_at=now, error=""
            )
        for view in views.values():
            for event_id, reason in view.bad_events.items():
                WebhookEvent.objects.filter(id=event_id).exclude(state=WebhookState.FAILED).update(
                    state=WebhookState.FAILED, error=reason[:1000]
                )
        return views


def _claim_attempts(event_ids: list[int]) -> dict[int, tuple[Any, int]]:
    """attempts += 1 for the still-received deliveries among ``event_ids`` (autocommitted, so a
    failed apply still counts): {event id: (seller, order)}; the others are left alone."""
    table = connection.ops.quote_name(WebhookEvent._meta.db_table)
    ids = sorted(set(event_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET attempts = attempts + 1 "  # noqa: S608 - name from _meta
            f"WHERE id IN ({', '.join(['%s'] * len(ids))}) AND state = %s RETURNING id, seller_id, object_id",
            [*ids, WebhookState.RECEIVED.value],
        )
        rows = cursor.fetchall()
    to_seller = WebhookEvent._meta.get_field("seller").target_field.to_python
    return {event_id: (to_seller(seller), order_id) for event_id, seller, order_id in rows}


def webhook_event_apply(*, event_id: int) -> str:
    """Apply one stored delivery (through its whole order); returns the delivery's final state."""
    return webhook_events_apply(event_ids=[event_id])[event_id]


def webhook_events_apply(*, event_ids: list[int]) -> dict[int, str]:
    """Apply stored deliveries (each through its whole order): one transaction per seller in
    the batch. Returns each delivery's final state.

    Each seller's transaction also takes along up to WEBHOOK_DRAIN_ORDERS of the seller's orders whose
    deliveries still wait for their own message (``_lock_pending_orders``), so a worker behind
    the stream catches up in large batches. A delivery already applied, ignored, stale or failed
    is left alone, so a redelivered task, a message overtaken by such a drain or a sweeper
    duplicate costs one indexed UPDATE that matches nothing. If a batch's transaction
    fails on anything but a transient database error, its deliveries are applied one by one, so
    one delivery that cannot be applied never holds back the others (its error is recorded and
    the first such error is raised after the rest are done).

    With the ``webhook_auto_apply`` flag off (a message queued before the switch, or a worker
    restarted with it) nothing is claimed or applied: the deliveries stay ``received``, attempts
    untouched, and the sweeper applies them once the flag is back on.
    """
    if not event_ids:
        return {}
    if not auto_apply_enabled():
        logger.info("webhook_auto_apply is off: %d deliveries left for the sweeper", len(event_ids))
        known = dict(WebhookEvent.objects.filter(pk__in=event_ids).values_list("pk", "state"))
        return {event_id: known.get(event_id, "missing") for event_id in event_ids}
    claimed = _claim_attempts(event_ids)
    states: dict[int, str] = {}
    by_seller: dict[Any, dict[int, int]] = {}
    for event_id, (seller_id, order_id) in claimed.items():
        by_seller.setdefault(seller_id, {})[event_id] = order_id
    failure: Exception | None = None
    for seller_id, events in by_seller.items():
        try:
            views = orders_apply(seller_id=seller_id, order_ids=set(events.values()),
                                 drain=settings.WEBHOOK_DRAIN_ORDERS)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            # Again one by one and without the drained orders (those are left to their own
            # messages), so one delivery that cannot be applied never holds back the others.
            for event_id, order_id in events.items():
                try:
                    views = orders_apply(seller_id=seller_id, order_ids={order_id})
                    states[event_id] = _final_state(event_id, views[order_id])
                except (OperationalError, InterfaceError):
                    raise
                except Exception as one:
                    _record_error(event_id, one)
                    failure = failure or one
            continue
        for event_id, order_id in events.items():
            states[event_id] = _final_state(event_id, views[order_id])
    unclaimed = [event_id for event_id in event_ids if event_id not in claimed]
    if unclaimed:
        known = dict(WebhookEvent.objects.filter(pk__in=unclaimed).values_list("pk", "state"))
        states.update({event_id: known.get(event_id, "missing") for event_id in unclaimed})
    if failure is not None:
        raise failure
    return states


def _final_state(event_id: int, view: OrderView) -> str:
    return WebhookState.FAILED if event_id in view.bad_events else WebhookState.APPLIED


def _record_error(event_id: int, exc: Exception) -> None:
    WebhookEvent.objects.filter(pk=event_id, state=WebhookState.RECEIVED).update(error=repr(exc)[:1000])
