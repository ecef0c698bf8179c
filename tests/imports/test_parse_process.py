"""The export parsed in a child process (``export_process`` / ``export_child``, IMPORT_PARSE_PROCESS).

What must hold: the child reads exactly what the in-process parser read (same rows, same errors),
its binary COPY chunks store exactly what the rows path stores, a parser that dies mid-stream fails
the import cleanly and a retry completes without duplicates, the parser never outlives the import
process (SIGKILLed worker included), and it works under Celery's prefork pool (daemonic children).
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import ijson
import pytest
from django.db import DataError, connections

from inventory.models import InventoryItem, User
from syncops.models import OperationState, SyncOperation
from syncops.services import export_child
from syncops.services.export_process import ExportParserFailed, parse_in_child
from syncops.services.imports import import_run, import_start
from syncops.services.stage_rows import EncodeError, encode_body, encode_chunk, export_entry, export_row
from syncops.services.stock_stage import ChunkWriter, EncodedChunk, StageTables
from tests.imports.conftest import export_by_id

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("import_child.py")
_ijson = ijson.get_backend("yajl2_c")


# ------------------------------------------------------------------ parsing: same rows, same errors

BODIES = [
    b"[]", b"[ ]", b'[{"id":1}]', b'[{"id":1},{"id":2}]   ',
    b'[{"id":1},{"id":2,"a":[{"x":1},{"y":"},{\\""}]},{"id":3}]',  # '},{"' inside a row and in a string
    b'[{"id":1},{"id":2},{"id":3},{"id":4},{"id":5,"x":[{"a":1},{"b":2},{"c":3},{"d":4},{"e":5},{"f":6}]},{"id":6}]',
    b'[{"id":18446744073709551616000},{"id":1}]',  # beyond 64 bits: orjson would read a float
    b'[{"id":1,"p":1.5e3,"q":-0.25,"u":"\\u00e9\\n"},{"id":2,"n":null,"t":true}]',
    b'[{"id":1},{"id":2', b'[{"id":1}] x', b'[{"id":1},{"id":2},]', b'[{"id":1},{"id":2,"x":"\\ud800"},{"id":3}]',
]


def _outcome(read):
    try:
        return list(read())
    except Exception as exc:  # the error's type is what is compared
        return type(exc).__name__


@pytest.mark.parametrize("piece", [1, 5, 16, 1 << 20])
@pytest.mark.parametrize("body", BODIES)
def test_the_child_reads_exactly_what_ijson_reads(body, piece, monkeypatch):
    monkeypatch.setattr(export_child, "PIECE_SIZE", piece)
    ours = _outcome(lambda: export_child._split_rows(io.BytesIO(body)))
    theirs = _outcome(lambda: _ijson.items(io.BytesIO(body), "item", use_float=True))
    assert ours == theirs


def _export_row(pid: int, **changes) -> dict:
    row = {"id": pid, "name_en": "Ghalta, Primal Hunger", "quantity": 7, "description": "", "price_cents": 78,
           "price_currency": "EUR", "game_id": 1, "category_id": 1, "blueprint_id": 6, "user_id": 1001,
           "properties_hash": {"condition": "Poor", "mtg_foil": True}, "graded": False, "user_data_field": "x",
           "expansion": {"id": 1, "code": "gnt", "name_en": "Game Night"}}
    row.update(changes)
    return row


@pytest.mark.parametrize("changes", [
    {}, {"game_id": None}, {"category_id": None}, {"name_en": "Æ" * 300}, {"price_currency": "EURO"},
    {"description": "tab\there\nnewline \\ backslash"}, {"properties_hash": {"é": [1, 2.5, None, True]}},
    {"id": "12"}, {"price": {"cents": 5, "currency": "EUR"}},
], ids=lambda c: ",".join(c) or "plain")
def test_export_entry_equals_export_row_then_encode_body(changes):
    d = _export_row(5, **changes)
    r = export_row(d)
    assert export_entry(d) == (r[0], r[1], r[4], encode_body(r))


@pytest.mark.parametrize(("field", "value"), [("quantity", 2**32 + 5), ("price_cents", -2**31 - 1), ("id", 2**63)])
def test_an_integer_its_column_cannot_hold_is_refused_by_the_encoder(field, value):
    with pytest.raises(EncodeError, match="out of range for its column"):
        export_entry(_export_row(5, **{field: value}))


def _parse(body: bytes, chunk_size: int = 2) -> list[EncodedChunk]:
    source = io.BytesIO(body)
    first = source.read(1)
    source.seek(0)
    return list(parse_in_child(source, first, chunk_size))


def test_the_child_sends_deduplicated_chunks_with_ids_and_names():
    rows = [_export_row(1), _export_row(2, name_en="Other", blueprint_id=7), _export_row(1, quantity=9),
            _export_row(3)]
    chunks = _parse(("[" + ",".join(json.dumps(r) for r in rows) + "]").encode(), chunk_size=3)
    # Deduplicated by product id within a chunk, as in-process: the second 1 replaces the first, in its place.
    assert [len(c) for c in chunks] == [3]
    chunk = chunks[0]
    assert chunk.seen == b"1\n2\n3\n" and list(chunk.bps) == [6, 7, 6]
    assert sorted(chunk.names) == [(6, "Ghalta, Primal Hunger"), (7, "Other")]
    assert bytes(chunk.bodies).count(b"Other") == 1
    assert _parse(b"[" + b",".join(json.dumps(_export_row(i)).encode() for i in range(5)) + b"]",
                  chunk_size=2).__len__() == 3


def _in_process_error(body: bytes) -> BaseException:
    try:
        for d in _ijson.items(io.BytesIO(body), "item", use_float=True):
            export_row(d)
    except Exception as exc:  # the in-process parser's error for this body
        return exc
    raise AssertionError("the in-process parser took the body")


@pytest.mark.parametrize("body", [
    ("[" + json.dumps(_export_row(1)) + ',{"id":2').encode(),  # truncated
    ("[" + json.dumps(_export_row(1)) + ',{"id":2}]').encode(),  # a row without its fields (KeyError)
    ("[" + json.dumps(_export_row(1, blueprint_id="six")) + "]").encode(),  # a wrong type (ValueError)
    ("[" + json.dumps(_export_row(1)) + "] trailing").encode(),
], ids=["truncated", "missing-key", "wrong-type", "trailing-garbage"])
def test_the_childs_errors_are_raised_as_the_in_process_parser_raised_them(body):
    expected = _in_process_error(body)
    with pytest.raises(type(expected)) as raised:
        _parse(body)
    assert str(raised.value) == str(expected)


def test_an_integer_out_of_range_is_a_data_error_naming_product_and_column():
    with pytest.raises(DataError, match="product 1: quantity 4294967301 is out of range for its column"):
        _parse(("[" + json.dumps(_export_row(1, quantity=2**32 + 5)) + "]").encode())


def test_a_child_that_dies_is_an_export_parser_failure(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")  # exits at once, says nothing
    with pytest.raises(ExportParserFailed, match="exited with code 1"):
        _parse(b"[]")


# ------------------------------------------------------------------ writing: the same rows as the rows path

def _row(pid: int, **over) -> list:
    row = [pid, 1000 + pid % 3, None, "", f"Card {pid}", 1, 1, 10, 2, 150, "EUR", '{"condition":"NM"}', "", "", False]
    for i, v in over.items():
        row[int(i)] = v
    return row


def _stored(seller: User) -> dict[int, tuple]:
    cols = ("product_id", "blueprint_id", "print_id", "print_table", "name", "game_id", "category_id", "expansion_id",
            "quantity", "price_cents", "currency", "properties", "description", "user_data_field", "graded",
            "sync_state", "version")
    return {r[0]: r[1:] for r in InventoryItem.objects.filter(seller=seller).values_list(*cols)}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", [True, False], ids=["first-import-copy", "staged-upsert"])
def test_encoded_chunks_store_exactly_what_rows_store(first):
    mapping = {1000: ("cards_prints", 2**40), 1001: ("sealed_products", 7)}  # 1002 stays unmapped
    rows = [_row(i) for i in range(1, 40)]
    rows[3] = _row(4, **{"4": "Ænima ☃", "5": None, "6": None, "11": '{"nested":{"é":[1,2.5,null,true]}}',
                         "12": "tab\there\nnewline \\ backslash", "14": True})
    sellers = []
    for encoded in (False, True):
        seller = User.objects.create(username=f"enc-{uuid.uuid4().hex[:8]}")
        sellers.append(seller)
        chunks = []
        for part in (rows[:20], rows[20:]):
            if encoded:
                chunk = EncodedChunk(encode_chunk([list(r) for r in part]))
                chunk.mapping = {bp: mapping.get(bp) for bp in set(chunk.bps)}
            else:
                chunk = [list(r) for r in part]
                for r in chunk:
                    r[3], r[2] = mapping.get(r[1], ("", None))
            chunks.append(chunk)
        with StageTables(keep_rows=False) as stage, \
                ChunkWriter(stage, seller.pk, writers=2, first_import=first) as writer:
            for chunk in chunks:
                writer.write(chunk)
            writer.finish()
        assert (writer.counts.inserted, writer.done) == (39, 39)
    plain, encoded_rows = _stored(sellers[0]), _stored(sellers[1])
    assert plain == encoded_rows and len(plain) == 39
    assert plain[4][3] == "Ænima ☃"
    assert plain[1][1:3] == (7, "sealed_products") and plain[3][1:3] == (2**40, "cards_prints")
    assert plain[2][1:3] == (None, "")  # unmapped


# ------------------------------------------------------------------ the process: dies, never orphaned, prefork

def _parsers_of(pid: int) -> list[int]:
    """Live export_child processes whose parent is ``pid``."""
    found = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if b"export_child" not in (d / "cmdline").read_bytes():
                continue
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == pid and stat[0] != "Z":
            found.append(int(d.name))
    return found


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_for(predicate, timeout: float = 30.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(databases=["default", "blueprints"], transaction=True)
def test_a_parser_killed_mid_export_fails_the_import_cleanly_and_a_retry_completes(
        connected_seller, sandbox_account, control, catalogue_prints, settings):
    settings.IMPORT_CHUNK_SIZE = 300  # the writers lag far behind the parser: it is alive, blocked on the pipe
    uid = sandbox_account.user_id
    control.seed_products(uid, 30_000, seed=4)
    op = import_start(seller=connected_seller, dispatch=False)
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(import_run(op.pk))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        parser = _wait_for(lambda: _parsers_of(os.getpid()), what="the parser process")[0]
        _wait_for(lambda: (SyncOperation.objects.filter(pk=op.pk).values_list("progress_done", flat=True)
                           .first() or 0) >= 1_500, what="progress")
        assert not _gone(parser), "the parser finished before it could be killed"
        os.kill(parser, signal.SIGKILL)
    finally:
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert outcome[0].state == OperationState.FAILED, outcome
    op.refresh_from_db()
    assert op.error_code == "internal_error" and "export parser exited with signal 9" in op.last_error
    assert not _parsers_of(os.getpid())
    assert not [t for t in threading.enumerate() if t.name.startswith(("import-writer", "export-"))]
    written = InventoryItem.objects.filter(seller=connected_seller).count()
    assert 1_500 <= written < 30_000

    settings.IMPORT_CHUNK_SIZE = 5_000  # the retry needs no lagging writers (100 small chunks took ~40 s)
    retry = import_start(seller=connected_seller, dispatch=False)
    assert import_run(retry.pk).state == OperationState.SUCCEEDED
    local = list(InventoryItem.objects.filter(seller=connected_seller).values_list("product_id", "quantity"))
    export = export_by_id(control, uid)
    assert len(local) == len({pid for pid, _ in local}) == len(export) == 30_000
    assert dict(local) == {pid: row["quantity"] for pid, row in export.items()}


def _child_env(settings) -> dict[str, str]:
    default, bp = connections["default"].settings_dict, connections["blueprints"].settings_dict
    return dict(
        os.environ,
        DATABASE_URL=f"postgres://{default['USER']}@{default['HOST']}:{default['PORT']}/{default['NAME']}",
        BLUEPRINT_DATABASE_URL=f"mysql://{bp['USER'] or 'root'}@{bp['HOST']}:{bp['PORT'] or 3306}/{bp['NAME']}",
        CARDTRADER_API_BASE=settings.CARDTRADER_API_BASE,
        CATALOGUE_MAPPING_CACHE_PREFIX=settings.CATALOGUE_MAPPING_CACHE_PREFIX,
        RATE_LIMIT_KEY_PREFIX=settings.RATE_LIMIT_KEY_PREFIX,
    )


@pytest.mark.django_db(databases=["default", "blueprints"], transaction=True)
def test_the_parser_dies_with_a_sigkilled_import_process(connected_seller, sandbox_account, sandbox_settings,
                                                         control, catalogue_prints, settings):
    control.seed_products(sandbox_account.user_id, 30_000, seed=5)
    op = import_start(seller=connected_seller, dispatch=False)
    env = _child_env(settings)
    env.update(CHILD_CHUNK_SIZE="300", CHILD_LEASE_SECONDS="30",
               CHILD_CACHE_PREFIX=env["CATALOGUE_MAPPING_CACHE_PREFIX"], CHILD_RL_PREFIX=env["RATE_LIMIT_KEY_PREFIX"])
    worker = subprocess.Popen([sys.executable, str(CHILD), str(op.pk)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        parser = _wait_for(lambda: _parsers_of(worker.pid), what="the parser process")[0]
        assert worker.poll() is None
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        _wait_for(lambda: _gone(parser), timeout=5, what="the orphaned parser to die")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.mark.django_db(databases=["default", "blueprints"], transaction=True)
def test_an_import_in_a_celery_prefork_worker_parses_in_a_child_process(
        connected_seller, sandbox_account, sandbox_settings, control, catalogue_prints, settings, tmp_path):
    from brxsync.celery import app
    from syncops.tasks.imports import import_run_task

    control.seed_products(sandbox_account.user_id, 3_000, seed=6)
    with app.connection_for_write() as conn:  # tasks earlier tests published and nobody consumed
        conn.default_channel.queue_purge("bulk-sync")
    log = tmp_path / "worker.log"
    env = dict(_child_env(settings), DJANGO_SETTINGS_MODULE="brxsync.test_settings", PYTHONUNBUFFERED="1",
               LOG_LEVEL="INFO")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "brxsync", "worker", "-Q", "bulk-sync", "-P", "prefork", "-c", "1",
         "-n", f"imp-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", "INFO"],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_for(lambda: "ready" in log.read_text() or worker.poll() is not None, what="the worker")
        assert worker.poll() is None, log.read_text()[-3000:]
        op = import_start(seller=connected_seller, dispatch=False)
        import_run_task.apply_async(args=[op.pk])  # what the registered dispatcher sends
        _wait_for(lambda: SyncOperation.objects.get(pk=op.pk).state in (OperationState.SUCCEEDED,
                                                                       OperationState.FAILED),
                  timeout=90, what=f"the import in the worker:\n{log.read_text()[-3000:]}")
        op.refresh_from_db()
        assert op.state == OperationState.SUCCEEDED, (op.error_code, op.last_error, log.read_text()[-3000:])
        assert "export parsed in a child process: 3000 rows" in log.read_text()
        assert InventoryItem.objects.filter(seller=connected_seller).count() == 3_000
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


@pytest.mark.parametrize("written", [0, 5, 12], ids=["at-a-frame-edge", "inside-the-header", "inside-the-payload"])
def test_a_parser_killed_anywhere_in_its_output_reads_as_killed(monkeypatch, written):
    """Wherever the parser's output stops, the import reports how the parser ended, not a garbled
    frame. Fault injection: the parser's command is swapped for a real child that writes the first
    ``written`` bytes of a chunk frame and SIGKILLs itself (a kill lands at a random point
    otherwise; the kill test above once read "ended mid-frame")."""
    from types import SimpleNamespace

    from syncops.services import export_process

    frame = export_child.FRAME.pack(export_child.CHUNK, 1000) + b"x" * 1000
    script = (f"import os, signal, sys; sys.stdout.buffer.write(bytes.fromhex('{frame[:written].hex()}')); "
              "sys.stdout.flush(); os.kill(os.getpid(), signal.SIGKILL)")

    def popen(cmd, **kwargs):
        return subprocess.Popen([sys.executable, "-c", script], **kwargs)

    monkeypatch.setattr(export_process, "subprocess", SimpleNamespace(
        Popen=popen, PIPE=subprocess.PIPE, TimeoutExpired=subprocess.TimeoutExpired))
    with pytest.raises(ExportParserFailed, match="exited with signal 9 before the end of the export"):
        list(parse_in_child(io.BytesIO(b"[]"), b"[", 100))
