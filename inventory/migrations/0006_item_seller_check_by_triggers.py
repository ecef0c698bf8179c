# ruff: noqa: S608 - table names are the constants below, never input

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Issue 6's write-stage goal (docs/IMPORT.md, "Foreign key to the seller"; docs/BENCHMARKS.md).
#
# The foreign key inventory_inventoryitem.seller_id -> brx_user.id checked every inserted row on its
# own (RI's per-row trigger, deferred to the chunk's commit): ~45 % of the database CPU of a 250k-row
# first import. Triggers keep the same guarantee with one check per statement:
#
# Child side (immediate: a constraint trigger cannot be statement-level, so an item whose seller
# does not exist is refused at the end of its statement, no longer at commit).
# - After INSERT, per statement: the distinct sellers of the new rows (transition table) are locked
#   FOR KEY SHARE, as RI locks the referenced row, so a concurrent delete of a seller waits for this
#   transaction and then finds its items; a seller deleted first (committed, or committing while we
#   wait for its lock) is not returned, so the count falls short and the insert fails with 23503
#   (foreign_key_violation, Django's IntegrityError), naming the seller. Sorted locking, so writers
#   never deadlock on each other (KEY SHARE locks do not conflict with each other anyway).
# - After UPDATE OF seller_id, per row, only when it changes (nothing in the project does; pushes,
#   webhooks and the upsert never set it, and no statement-level trigger fires on their UPDATEs).
#
# Parent side: deleting a brx_user row, or changing its id, while items reference it fails with
# 23503 as the FK did. A constraint trigger DEFERRABLE INITIALLY DEFERRED, like the FK: the check
# runs at commit, so a transaction may delete the seller before its items (raw SQL, any order), and
# Django's CASCADE (items deleted first, in Python) keeps working; user deletes are rare, so the
# deferred queue costs nothing that matters. The check reads the items with a snapshot taken after
# the delete's row lock, so it sees every item whose inserter held the seller's KEY SHARE lock.
# That holds in READ COMMITTED only: a REPEATABLE READ / SERIALIZABLE deleter's snapshot predates
# items committed while it ran, and unlike RI a trigger cannot use a crosscheck snapshot, so such a
# transaction is refused (0A000, feature_not_supported) whether the seller has items or not.
#
# TRUNCATE brx_user no longer cascades to the items (no FK): an AFTER TRUNCATE trigger refuses it
# (0A000, as PostgreSQL refuses truncating a referenced table) while items remain; truncate both in
# one statement (``TRUNCATE brx_user, inventory_inventoryitem CASCADE``). AFTER, not BEFORE: the
# BEFORE triggers of a multi-table TRUNCATE all fire before any table is emptied.
#
# SQLite (the embedded ``make run``) gets row-level triggers doing the same checks: its writers are
# serialised by the database lock (transaction_mode IMMEDIATE), so no locking is needed. A later
# migration that remakes either table on SQLite (Django copies it into a new table) drops the
# triggers on it: tests/foundation/test_item_seller_integrity.py migrates a fresh SQLite file and
# fails if they are gone.

ITEMS = "inventory_inventoryitem"
USERS = "brx_user"

PG_FORWARD = f"""
CREATE FUNCTION inventory_check_new_item_sellers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted uuid[];
    locked int;
    missing uuid;
BEGIN
    SELECT array_agg(DISTINCT seller_id ORDER BY seller_id) INTO wanted FROM new_items;
    IF wanted IS NULL THEN
        RETURN NULL;  -- no row inserted (an upsert that only updated)
    END IF;
    SELECT count(*) INTO locked
      FROM (SELECT 1 FROM {USERS} u WHERE u.id = ANY (wanted) ORDER BY u.id FOR KEY SHARE OF u) l;
    IF locked < cardinality(wanted) THEN
        SELECT w INTO missing FROM unnest(wanted) w WHERE NOT EXISTS (SELECT 1 FROM {USERS} u WHERE u.id = w) LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "{ITEMS}" violates the seller check (item_seller_exists)'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'item_seller_exists', TABLE = '{ITEMS}',
                  DETAIL = format('Key (seller_id)=(%s) is not present in table "{USERS}".',
                                  coalesce(missing::text, 'a seller deleted meanwhile'));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION inventory_check_item_seller_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM {USERS} u WHERE u.id = NEW.seller_id FOR KEY SHARE OF u;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insert or update on table "{ITEMS}" violates the seller check (item_seller_exists)'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'item_seller_exists', TABLE = '{ITEMS}',
                  DETAIL = format('Key (seller_id)=(%s) is not present in table "{USERS}".', NEW.seller_id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION inventory_refuse_snapshot_isolation(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION '% needs READ COMMITTED, not %', what, current_setting('transaction_isolation')
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'The stock rows referencing a seller are checked by a trigger, which reads them '
                           'with the transaction''s snapshot: under REPEATABLE READ or SERIALIZABLE it '
                           'would miss items committed since the transaction began (docs/IMPORT.md).';
    END IF;
END $$;

CREATE FUNCTION inventory_check_seller_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM inventory_refuse_snapshot_isolation('deleting or re-keying a row of {USERS}');
    -- The key came back (deleted and re-inserted, or re-keyed back) in this transaction: still valid.
    PERFORM 1 FROM {USERS} u WHERE u.id = OLD.id FOR KEY SHARE OF u;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM {ITEMS} i WHERE i.seller_id = OLD.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'update or delete on table "{USERS}" violates the seller check (item_seller_exists) on table "{ITEMS}"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'item_seller_exists', TABLE = '{ITEMS}',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "{ITEMS}".', OLD.id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION inventory_check_sellers_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM inventory_refuse_snapshot_isolation('TRUNCATE {USERS}');
    PERFORM 1 FROM {ITEMS} LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot truncate table "{USERS}" while table "{ITEMS}" has rows'
            USING ERRCODE = 'feature_not_supported', CONSTRAINT = 'item_seller_exists',
                  HINT = 'Truncate both in one statement: TRUNCATE {USERS}, {ITEMS} CASCADE.';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER item_seller_on_insert AFTER INSERT ON {ITEMS} REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION inventory_check_new_item_sellers();
CREATE TRIGGER item_seller_on_update AFTER UPDATE OF seller_id ON {ITEMS} FOR EACH ROW
    WHEN (OLD.seller_id IS DISTINCT FROM NEW.seller_id) EXECUTE FUNCTION inventory_check_item_seller_change();
CREATE CONSTRAINT TRIGGER seller_items_on_delete AFTER DELETE ON {USERS}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inventory_check_seller_unreferenced();
CREATE CONSTRAINT TRIGGER seller_items_on_rekey AFTER UPDATE OF id ON {USERS}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION inventory_check_seller_unreferenced();
CREATE TRIGGER seller_items_on_truncate AFTER TRUNCATE ON {USERS}
    FOR EACH STATEMENT EXECUTE FUNCTION inventory_check_sellers_truncated();
"""

PG_BACKWARD = f"""
DROP TRIGGER IF EXISTS item_seller_on_insert ON {ITEMS};
DROP TRIGGER IF EXISTS item_seller_on_update ON {ITEMS};
DROP TRIGGER IF EXISTS seller_items_on_delete ON {USERS};
DROP TRIGGER IF EXISTS seller_items_on_rekey ON {USERS};
DROP TRIGGER IF EXISTS seller_items_on_truncate ON {USERS};
DROP FUNCTION IF EXISTS inventory_check_new_item_sellers();
DROP FUNCTION IF EXISTS inventory_check_item_seller_change();
DROP FUNCTION IF EXISTS inventory_check_seller_unreferenced();
DROP FUNCTION IF EXISTS inventory_check_sellers_truncated();
DROP FUNCTION IF EXISTS inventory_refuse_snapshot_isolation(text);
"""

_SQLITE_CHILD = "FOREIGN KEY constraint failed: item_seller_exists (seller_id not in brx_user)"
_SQLITE_PARENT = "FOREIGN KEY constraint failed: item_seller_exists (brx_user row still referenced by items)"
SQLITE_FORWARD = [
    f"""CREATE TRIGGER item_seller_on_insert BEFORE INSERT ON {ITEMS}
        WHEN NOT EXISTS (SELECT 1 FROM {USERS} WHERE id = NEW.seller_id)
        BEGIN SELECT RAISE(ABORT, '{_SQLITE_CHILD}'); END""",
    f"""CREATE TRIGGER item_seller_on_update BEFORE UPDATE OF seller_id ON {ITEMS}
        WHEN NEW.seller_id IS NOT OLD.seller_id AND NOT EXISTS (SELECT 1 FROM {USERS} WHERE id = NEW.seller_id)
        BEGIN SELECT RAISE(ABORT, '{_SQLITE_CHILD}'); END""",
    f"""CREATE TRIGGER seller_items_on_delete BEFORE DELETE ON {USERS}
        WHEN EXISTS (SELECT 1 FROM {ITEMS} WHERE seller_id = OLD.id)
        BEGIN SELECT RAISE(ABORT, '{_SQLITE_PARENT}'); END""",
    f"""CREATE TRIGGER seller_items_on_rekey BEFORE UPDATE OF id ON {USERS}
        WHEN NEW.id IS NOT OLD.id AND EXISTS (SELECT 1 FROM {ITEMS} WHERE seller_id = OLD.id)
        BEGIN SELECT RAISE(ABORT, '{_SQLITE_PARENT}'); END""",
]
SQLITE_BACKWARD = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "item_seller_on_insert", "item_seller_on_update", "seller_items_on_delete", "seller_items_on_rekey")]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)  # literal %: no placeholders
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0005_blueprint_names_and_index_merge'),
    ]

    operations = [
        # Drops the foreign key constraint (PostgreSQL), remakes the table without it (SQLite); the
        # Django relation (joins, admin, the CASCADE collector) is unchanged.
        migrations.AlterField(
            model_name='inventoryitem',
            name='seller',
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.CASCADE,
                                    related_name='inventory_items', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(forward, backward),
    ]
