"""Every stock row's seller exists: triggers in place of the foreign key (migration inventory/0006).

The FK's per-row check cost ~45 % of a big import's database CPU; a statement-level trigger checks
the distinct sellers of each INSERT instead, locking them ``FOR KEY SHARE`` as RI does, and a
deferred constraint trigger on ``brx_user`` refuses deleting (or re-keying) a seller whose items
remain (docs/IMPORT.md, "Foreign key to the seller"). Each guarantee is checked here by the path
that writes it (ORM, the first import's COPY, the staged upsert, raw SQL), and the races by two real
connections: without the locking, or under REPEATABLE READ, an orphaned item would be left behind.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from inventory.models import InventoryItem, SyncSettings, User
from syncops.services.stock_stage import ChunkWriter, StageTables, copy_new_items, upsert_from_stage

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, tzinfo=UTC)
INSERT = (
    "INSERT INTO inventory_inventoryitem (seller_id, product_id, blueprint_id, print_table, name, quantity, "
    "price_cents, currency, properties, description, user_data_field, graded, sync_state, version, created_at, "
    "updated_at) VALUES (%s, %s, 1, '', 'Card', 1, 100, 'EUR', '{}', '', '', false, 'in_sync', 1, now(), now())"
)


def _row(pid: int) -> list:
    """A stage row (``STAGE_COLUMNS`` order)."""
    return [pid, 10, None, "", "Card", 1, 1, 10, 1, 100, "EUR", "{}", "", "", False]


def _bare_seller() -> User:
    """A seller with nothing else referencing it (no sync settings), so only the item check can object."""
    return User.objects.create(username=f"bare-{uuid.uuid4().hex[:8]}")


def _orphans() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM inventory_inventoryitem i "
                    "WHERE NOT EXISTS (SELECT 1 FROM brx_user u WHERE u.id = i.seller_id)")
        return cur.fetchone()[0]


def _dsn() -> dict:
    return {k: v for k, v in connection.get_connection_params().items() if k in ("dbname", "host", "port", "user")}


# ------------------------------------------------------------------ child side: every writer


@pytest.mark.django_db
def test_an_orm_insert_with_an_unknown_seller_is_refused_naming_the_seller(seller):
    unknown = uuid.uuid4()
    with pytest.raises(IntegrityError, match="item_seller_exists") as refused, transaction.atomic():
        InventoryItem.objects.create(seller_id=unknown, product_id=1, blueprint_id=1)
    assert str(unknown) in str(refused.value.__cause__.diag.message_detail)
    # One statement of many rows: one unknown seller among known ones refuses all of them.
    with pytest.raises(IntegrityError, match="item_seller_exists"), transaction.atomic():
        InventoryItem.objects.bulk_create([InventoryItem(seller=seller, product_id=2, blueprint_id=1),
                                           InventoryItem(seller_id=unknown, product_id=3, blueprint_id=1)])
    InventoryItem.objects.create(seller=seller, product_id=4, blueprint_id=1)
    assert list(InventoryItem.objects.values_list("product_id", flat=True)) == [4]


@pytest.mark.django_db
def test_the_first_imports_copy_with_an_unknown_seller_is_refused(seller):
    with pytest.raises(IntegrityError, match="item_seller_exists"), transaction.atomic():
        copy_new_items([_row(1), _row(2)], uuid.uuid4(), NOW)
    # Through the writer: a refused seller is not mistaken for a duplicate (which falls back to the upsert).
    with pytest.raises(IntegrityError, match="item_seller_exists"), transaction.atomic(), \
            StageTables(keep_rows=False) as stage, \
            ChunkWriter(stage, uuid.uuid4(), writers=1, first_import=True) as writer:
        writer.write([_row(1), _row(2)])
    copy_new_items([_row(1), _row(2)], seller.pk, NOW)
    assert InventoryItem.objects.filter(seller=seller).count() == 2


@pytest.mark.django_db
def test_the_staged_upsert_with_an_unknown_seller_is_refused(seller):
    with StageTables(keep_rows=False) as stage:
        stage.load([_row(1), _row(2)])
        with pytest.raises(IntegrityError, match="item_seller_exists"), transaction.atomic():
            upsert_from_stage(stage, uuid.uuid4(), NOW)
        assert upsert_from_stage(stage, seller.pk, NOW).inserted == 2
        # An upsert that inserts nothing (only updates) passes the check with no sellers to check.
        stage.load([[*_row(1)[:8], 7, *_row(1)[9:]]])
        counts = upsert_from_stage(stage, seller.pk, NOW)
    assert (counts.inserted, counts.updated) == (0, 1)


@pytest.mark.django_db
def test_moving_an_item_to_an_unknown_seller_is_refused_to_a_known_one_allowed(seller):
    item = InventoryItem.objects.create(seller=seller, product_id=1, blueprint_id=1)
    with pytest.raises(IntegrityError, match="item_seller_exists"), transaction.atomic():
        InventoryItem.objects.filter(pk=item.pk).update(seller_id=uuid.uuid4())
    other = _bare_seller()
    InventoryItem.objects.filter(pk=item.pk).update(seller=other)
    item.refresh_from_db()
    assert item.seller_id == other.pk


# ------------------------------------------------------------------ parent side


@pytest.mark.django_db(transaction=True)
def test_deleting_a_seller_still_referenced_is_refused_at_commit():
    user = _bare_seller()
    InventoryItem.objects.create(seller=user, product_id=1, blueprint_id=1)
    with pytest.raises(IntegrityError, match="item_seller_exists"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute("DELETE FROM brx_user WHERE id = %s", [user.pk])
    # Re-keying it is refused the same way.
    with pytest.raises(IntegrityError, match="item_seller_exists"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute("UPDATE brx_user SET id = %s WHERE id = %s", [uuid.uuid4(), user.pk])
    assert User.objects.filter(pk=user.pk).exists() and _orphans() == 0
    # Deferred, as the foreign key was: the seller first, then its items, in one transaction is fine.
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM brx_user WHERE id = %s", [user.pk])
        cur.execute("DELETE FROM inventory_inventoryitem WHERE seller_id = %s", [user.pk])
    assert not User.objects.filter(pk=user.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_user_through_django_cascades_to_its_items():
    user = User.objects.create(username=f"seller-{uuid.uuid4().hex[:8]}")
    SyncSettings.objects.create(user=user)
    InventoryItem.objects.bulk_create([InventoryItem(seller=user, product_id=p, blueprint_id=1) for p in (1, 2)])
    keep = _bare_seller()
    InventoryItem.objects.create(seller=keep, product_id=1, blueprint_id=1)
    user.delete()
    assert not User.objects.filter(pk=user.pk).exists()
    assert list(InventoryItem.objects.values_list("seller_id", flat=True)) == [keep.pk]


@pytest.mark.django_db(transaction=True)
def test_truncating_the_users_without_the_items_is_refused():
    user = _bare_seller()
    InventoryItem.objects.create(seller=user, product_id=1, blueprint_id=1)
    with psycopg.connect(**_dsn()) as pg:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="inventory_inventoryitem"):
            pg.execute("TRUNCATE brx_user CASCADE")
        pg.rollback()
        pg.execute("TRUNCATE brx_user, inventory_inventoryitem CASCADE")  # both at once: fine
        assert pg.execute("SELECT count(*) FROM brx_user").fetchone()[0] == 0
        pg.rollback()
    assert _orphans() == 0 and InventoryItem.objects.count() == 1


# ------------------------------------------------------------------ races between two connections


class _Client(threading.Thread):
    """One client on its own connection: runs ``work(conn)``; keeps the error that ended it."""

    def __init__(self, work: Callable[[psycopg.Connection], None]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.error: psycopg.Error | None = None
        self.pid: int | None = None
        self.started_work = threading.Event()
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            with psycopg.connect(**_dsn()) as conn:
                self.pid = conn.info.backend_pid
                self.started_work.set()
                self.work(conn)
        except psycopg.Error as exc:
            self.error = exc
        finally:
            self.started_work.set()
            self.finished.set()


def _blocked(client: _Client, *, past: threading.Event | None = None, timeout: float = 10.0) -> bool:
    """True once the client waits for a lock; False if it finished, or got ``past`` the statement
    that should have waited, first."""
    client.started_work.wait(timeout)
    deadline = time.monotonic() + timeout
    with psycopg.connect(**_dsn(), autocommit=True) as watcher:
        while time.monotonic() < deadline:
            if client.finished.is_set() or (past is not None and past.is_set()):
                return False
            waiting = watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                      [client.pid]).fetchone()
            if waiting and waiting[0] == "Lock":
                return True
            time.sleep(0.02)
    raise AssertionError("the client neither waited for a lock nor finished")


@pytest.mark.django_db(transaction=True)
def test_an_insert_after_an_uncommitted_delete_of_its_seller_waits_then_fails():
    """Delete first: the inserter must wait for the deleter's row lock and then find the seller gone.
    Without the lock it would see the not-yet-deleted row, both would commit: an orphan."""
    user = _bare_seller()
    deleter_done = threading.Event()
    inserted = threading.Event()

    def insert(conn: psycopg.Connection) -> None:
        conn.execute(INSERT, [user.pk, 1])
        inserted.set()
        deleter_done.wait(10)
        conn.commit()

    with psycopg.connect(**_dsn()) as deleter:
        deleter.execute("DELETE FROM brx_user WHERE id = %s", [user.pk])
        inserter = _Client(insert)
        inserter.start()
        blocked = _blocked(inserter, past=inserted)
        deleter.commit()
    deleter_done.set()
    inserter.join(10)
    assert _orphans() == 0
    assert blocked, "the insert did not wait for the deleting transaction"
    assert inserter.error is not None and inserter.error.sqlstate == "23503", inserter.error
    assert not User.objects.filter(pk=user.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_delete_after_an_uncommitted_insert_for_the_seller_waits_then_fails():
    """Insert first: the deleter must wait for the inserter (which holds the seller FOR KEY SHARE),
    then see its committed item. Without the lock the delete would commit first: an orphan."""
    user = _bare_seller()

    def delete(conn: psycopg.Connection) -> None:
        conn.execute("DELETE FROM brx_user WHERE id = %s", [user.pk])
        conn.commit()

    with psycopg.connect(**_dsn()) as inserter:
        inserter.execute(INSERT, [user.pk, 1])
        deleter = _Client(delete)
        deleter.start()
        blocked = _blocked(deleter)
        inserter.commit()
    deleter.join(10)
    assert _orphans() == 0
    assert blocked, "the delete did not wait for the inserting transaction"
    assert deleter.error is not None and deleter.error.sqlstate == "23503", deleter.error
    assert InventoryItem.objects.filter(seller_id=user.pk).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("isolation", [psycopg.IsolationLevel.REPEATABLE_READ, psycopg.IsolationLevel.SERIALIZABLE],
                         ids=["repeatable_read", "serializable"])
def test_a_seller_delete_under_a_snapshot_isolation_is_refused(isolation):
    """A REPEATABLE READ deleter's snapshot predates an item committed while it ran: the trigger
    would not see it (RI has a crosscheck snapshot for this, a trigger has not). Refused, always."""
    user, idle = _bare_seller(), _bare_seller()
    with psycopg.connect(**_dsn()) as deleter:
        deleter.isolation_level = isolation
        deleter.execute("SELECT 1")  # the snapshot is taken
        InventoryItem.objects.create(seller=user, product_id=1, blueprint_id=1)  # committed after it
        deleter.execute("DELETE FROM brx_user WHERE id = %s", [user.pk])
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="READ COMMITTED"):
            deleter.commit()
        # A seller with no items at all is refused too: the trigger cannot know which case it is in.
        deleter.execute("DELETE FROM brx_user WHERE id = %s", [idle.pk])
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            deleter.commit()
    assert _orphans() == 0 and User.objects.filter(pk__in=[user.pk, idle.pk]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_insert_under_repeatable_read_for_a_seller_deleted_since_its_snapshot_fails():
    """The inserter's snapshot still shows the seller, deleted and committed since: locking it
    raises a serialization failure instead of returning a row that is gone."""
    user = _bare_seller()
    with psycopg.connect(**_dsn()) as inserter:
        inserter.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        inserter.execute("SELECT 1")
        User.objects.filter(pk=user.pk).delete()
        with pytest.raises(psycopg.errors.SerializationFailure):
            inserter.execute(INSERT, [user.pk, 1])
    assert _orphans() == 0


# ------------------------------------------------------------------ SQLite (the embedded run)


def test_sqlite_enforces_the_same_with_its_own_triggers(tmp_path):
    """A fresh SQLite database migrated as ``make run`` does: the item checks are in place (a later
    migration remaking either table on SQLite would drop them, and fail here)."""
    path = tmp_path / "brxsync.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "brxsync.test_settings", "DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    db = sqlite3.connect(path)
    try:
        user, other, unknown = (uuid.uuid4().hex for _ in range(3))
        for uid in (user, other):
            db.execute("INSERT INTO brx_user (id, password, is_superuser, username, first_name, last_name, email, "
                       "is_staff, is_active, date_joined) VALUES (?, '', 0, ?, '', '', '', 0, 1, '2026-11-27')",
                       [uid, uid])
        item = INSERT.replace("%s", "?").replace("false", "0").replace("now()", "'2026-11-27'")
        db.execute(item, [user, 1])
        with pytest.raises(sqlite3.IntegrityError, match="item_seller_exists"):
            db.execute(item, [unknown, 2])
        with pytest.raises(sqlite3.IntegrityError, match="item_seller_exists"):
            db.execute("UPDATE inventory_inventoryitem SET seller_id = ? WHERE product_id = 1", [unknown])
        with pytest.raises(sqlite3.IntegrityError, match="item_seller_exists"):
            db.execute("DELETE FROM brx_user WHERE id = ?", [user])
        with pytest.raises(sqlite3.IntegrityError, match="item_seller_exists"):
            db.execute("UPDATE brx_user SET id = ? WHERE id = ?", [unknown, user])
        db.execute("UPDATE inventory_inventoryitem SET seller_id = ? WHERE product_id = 1", [other])
        db.execute("DELETE FROM brx_user WHERE id = ?", [user])  # nothing references it any more
        db.commit()
        assert db.execute("SELECT seller_id FROM inventory_inventoryitem").fetchall() == [(other,)]
    finally:
        db.close()
