# The outbox keeps only the indexes its readers use: every local edit inserts a row and every
# state change rewrites its index entries (docs/DECISIONS.md). Dropped: the LIKE-only twins that
# unique=True (operation_key) and db_index=True (cardtrader_job_uuid) build for a varchar on
# PostgreSQL (the admin searches exact values only), and the single-column seller index that
# op_seller_created_idx and op_seller_open_idx lead with.
#
# No index is rebuilt: the unique constraint and the job id's index are renamed to the names the
# model now gives them (instant), and the three others are dropped CONCURRENTLY, so writes to a
# large outbox are never blocked. Hence a non-atomic migration. SQLite (the embedded run) has
# none of these indexes: state only.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

_TABLE = "syncops_syncoperation"
_DROPPED = {  # name: definition, for the way back
    "syncops_syncoperation_operation_key_f1e45a85_like": "(operation_key varchar_pattern_ops)",
    "syncops_syncoperation_cardtrader_job_uuid_42f2443c_like": "(cardtrader_job_uuid varchar_pattern_ops)",
    "syncops_syncoperation_seller_id_9c9f682f": "(seller_id)",
}
_OLD_JOB_INDEX, _NEW_JOB_INDEX = "syncops_syncoperation_cardtrader_job_uuid_42f2443c", "op_ct_job_uuid_idx"
_NEW_UNIQUE = "op_operation_key_unique"
# The unique constraint on operation_key alone, whatever PostgreSQL named it at CREATE TABLE.
_UNIQUE_NAME = """
SELECT c.conname FROM pg_constraint c JOIN pg_attribute a
  ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] AND cardinality(c.conkey) = 1
WHERE c.conrelid = %s::regclass AND c.contype = 'u' AND a.attname = 'operation_key'
"""


def _rename_unique(schema_editor, to):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(_UNIQUE_NAME, [_TABLE])
        row = cursor.fetchone()
    if row and row[0] != to:
        schema_editor.execute(f'ALTER TABLE {_TABLE} RENAME CONSTRAINT "{row[0]}" TO "{to}"')


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    _rename_unique(schema_editor, _NEW_UNIQUE)
    schema_editor.execute(f'ALTER INDEX IF EXISTS "{_OLD_JOB_INDEX}" RENAME TO "{_NEW_JOB_INDEX}"')
    for name in _DROPPED:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, definition in _DROPPED.items():
        schema_editor.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON {_TABLE} {definition}')
    schema_editor.execute(f'ALTER INDEX IF EXISTS "{_NEW_JOB_INDEX}" RENAME TO "{_OLD_JOB_INDEX}"')
    _rename_unique(schema_editor, f"{_TABLE}_operation_key_key")


class Migration(migrations.Migration):

    atomic = False  # DROP / CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('syncops', '0005_webhook_payload_lz4'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='syncoperation',
                    name='operation_key',
                    field=models.CharField(max_length=255),
                ),
                migrations.AddConstraint(
                    model_name='syncoperation',
                    constraint=models.UniqueConstraint(fields=('operation_key',), name='op_operation_key_unique'),
                ),
                migrations.AlterField(
                    model_name='syncoperation',
                    name='cardtrader_job_uuid',
                    field=models.CharField(blank=True, default='', max_length=64),
                ),
                migrations.AddIndex(
                    model_name='syncoperation',
                    index=models.Index(fields=['cardtrader_job_uuid'], name='op_ct_job_uuid_idx'),
                ),
                migrations.AlterField(
                    model_name='syncoperation',
                    name='seller',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='operations', to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
