"""The import's export parsing in a child process: the parent's side (the child is ``export_child``).

``parse_in_child(source, first, chunk_size)`` is the ``parse`` hook of ``client.export_products``:
it starts ``python -m syncops.services.export_child``, pumps the export's raw body (already
checked to start with ``[`` or ``{``) into its stdin from a thread, and yields the child's chunks as
``EncodedChunk``s (deduplicated stage rows as binary COPY data, plus their ids, blueprints and
names). The import process keeps the mapping, the writers and everything that touches a database.

Why a plain subprocess: a Celery prefork child is daemonic, and a daemonic process may not start
``multiprocessing`` children; ``subprocess`` has no such rule, starts with a clean interpreter (no
inherited database or Redis sockets, unlike a fork) and costs ~0.1 s, since the child imports no
Django.

Failures, all raised in the caller's thread (the import then fails or defers as it did when the
same thing happened in-process):
- the body is bad JSON → ``ijson.JSONError`` (the client turns it into ``UnexpectedResponse``);
  a row of the wrong shape → the same KeyError / TypeError / ValueError as in-process (idem);
- an integer its column cannot hold → ``DataError`` naming product and column;
- the download fails → the client's own error, from the pump thread;
- the child dies or breaks the protocol → ``ExportParserFailed`` (the run fails as
  ``internal_error``; its committed chunks stay, and a retry upserts: no duplicates).
The child is killed and reaped whenever the generator ends (finished, failed or closed early),
and the kernel kills it if the thread that started it dies (see ``export_child``).
"""
from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson
from django.db import DataError

from syncops.cardtrader.export import NotAnArray
from syncops.services.export_child import CHUNK, DONE, ERROR, FRAME, READ_SIZE
from syncops.services.stock_stage import EncodedChunk

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
PIPE_SIZE = 1 << 20  # fewer wake-ups per 2 MB chunk than the default 64 KiB
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# What the last parser process of this process reported at its end (rows, cpu_s, peak_rss_kb): the
# bench reads it; informational only.
last_stats: dict[str, Any] = {}
_SHAPE = {"KeyError": KeyError, "TypeError": TypeError, "ValueError": ValueError, "AttributeError": AttributeError}


class ExportParserFailed(RuntimeError):
    """The export parser process died or broke the protocol."""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _widen(fd: int) -> None:
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:  # above /proc/sys/fs/pipe-max-size for this user: the default works, just slower
        pass


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    """``size`` bytes, or None when the output ended first (at a frame's edge or inside one)."""
    data = stream.read(size)
    return data if len(data) == size else None


def _ended(proc: subprocess.Popen, pump: threading.Thread, pump_error: list[BaseException]) -> BaseException:
    """Why the parser's output stopped before its DONE frame: the download's own error, else how the
    child exited. Asked the same way wherever the output stopped: a child killed while writing a
    frame leaves half of it, and that must read as the kill, not as a garbled frame."""
    pump.join(timeout=1)
    if pump_error:
        return pump_error[0]
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # closed its output yet still running: not a parser we know
        proc.kill()
        return ExportParserFailed("export parser closed its output before the end of the export")
    how = f"signal {-code}" if code < 0 else f"code {code}"
    return ExportParserFailed(f"export parser exited with {how} before the end of the export")


def _error(report: dict[str, Any]) -> BaseException:
    kind, name, message = report.get("kind"), report.get("type", ""), report.get("message", "")
    if kind == "json":
        return ijson.common.IncompleteJSONError(message)
    if kind == "no_array":
        return NotAnArray(message)
    if kind == "encode":
        return DataError(message)
    if kind == "shape" and name in _SHAPE:
        return _SHAPE[name](message)
    return ExportParserFailed(f"export parser failed: {name}: {message}")


def parse_in_child(source: Any, first: bytes, chunk_size: int) -> Iterator[EncodedChunk]:
    """Chunks of the export body read from ``source`` (``read(size)``; ``first`` is its first byte)."""
    cmd = [sys.executable, "-m", "syncops.services.export_child", str(chunk_size), first.decode(), str(os.getpid())]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_child_env(), cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    _widen(proc.stdin.fileno())
    _widen(proc.stdout.fileno())
    pump_error: list[BaseException] = []

    def pump() -> None:
        try:
            while data := source.read(READ_SIZE):
                proc.stdin.write(data)
        except (BrokenPipeError, ValueError):  # the child ended (or was killed): it says why, or we do
            pass
        except BaseException as exc:  # the download failed: the caller raises this, not the child's EOF error
            pump_error.append(exc)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    thread = threading.Thread(target=pump, name="export-pump", daemon=True)
    thread.start()
    try:
        while True:
            header = _read_exact(proc.stdout, FRAME.size)
            if header is None:
                raise _ended(proc, thread, pump_error)
            kind, size = FRAME.unpack(header)
            payload = _read_exact(proc.stdout, size) if size else b""
            if payload is None:
                raise _ended(proc, thread, pump_error)
            if kind == CHUNK:
                yield EncodedChunk(payload)
            elif kind == ERROR:
                thread.join(timeout=1)
                if pump_error:  # a cut download makes the child see truncated JSON: the cut is the cause
                    raise pump_error[0]
                raise _error(orjson.loads(payload))
            elif kind == DONE:
                thread.join(timeout=1)
                if pump_error:
                    raise pump_error[0]
                stats = orjson.loads(payload)
                last_stats.clear()
                last_stats.update(stats)
                logger.info("export parsed in a child process: %s rows, %.2f s CPU, peak RSS %.0f MB",
                            stats.get("rows"), stats.get("cpu_s", 0), stats.get("peak_rss_kb", 0) / 1024)
                return
            else:
                raise ExportParserFailed(f"export parser sent an unknown frame {kind!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        # The pump ends at its next write (broken pipe) or when the caller closes the response.
        thread.join(timeout=1)
