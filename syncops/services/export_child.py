"""The import's export parser, run as a child process (``python -m syncops.services.export_child``).

Started by ``export_process.parse_in_child``: it reads the raw ``/products/export`` body on stdin
(the parent streams it from CardTrader through its client, so the limiter, metering and error
mapping stay in one place), parses it with ijson's C backend, builds the stage rows, deduplicates
each chunk by product id and writes each chunk as ready binary COPY data (``stage_rows.encode_chunk``)
to stdout. Parsing and encoding were ~2/3 of the import process's CPU; in a process of their own
they use the machine's other core instead of the writers' GIL.

No Django, no database: it starts in ~0.1 s. Frames on stdout: one byte kind + uint64 length +
payload. ``C`` a chunk, ``E`` an error (JSON: kind, type, message), ``D`` done (JSON: rows, peak RSS).

It never outlives its parent: the kernel kills it when the parent thread that started it dies
(``PR_SET_PDEATHSIG``; a SIGKILLed Celery worker included), and a closed stdin or stdout ends it.

Usage: python -m syncops.services.export_child <chunk_size> <first byte: [ or {> <parent pid>
"""
from __future__ import annotations

import gc
import os
import resource
import signal
import struct
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson
import orjson

from syncops.services.stage_rows import EncodeError, Entry, encode_entries, export_entry

FRAME = struct.Struct(">cQ")
CHUNK, ERROR, DONE = b"C", b"E", b"D"
READ_SIZE = 64 * 1024
PIECE_SIZE = 1 << 20
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))  # digits → "0", the rest → " "
_NINETEEN = b"0" * 19


def _long_number(data: bytes) -> bool:
    """Whether ``data`` has a run of 19 digits (~2 ns a byte; a regex took 13)."""
    return data.translate(_DIGITS).find(_NINETEEN) >= 0
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when the parent's spawning thread ends (Linux); exit at once if the
    parent is already gone (we would have been re-parented before the call)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: the closed pipes still end us
        pass
    if os.getppid() != parent_pid:
        os._exit(3)


class _Rest:
    """``prefix`` then what is left of ``source``: the stream ijson continues with."""

    def __init__(self, prefix: bytes, source: BinaryIO) -> None:
        self._prefix, self._source = prefix, source

    def read(self, size: int = -1) -> bytes:
        if not self._prefix:
            return self._source.read(size)
        if size < 0:
            size = len(self._prefix)
        data, self._prefix = self._prefix[:size], self._prefix[size:]  # ijson reads 0 bytes first
        return data


def _leading_rows(buf: bytes) -> tuple[list[Any] | None, int]:
    """(rows, where the rest of ``buf`` starts) for the whole rows at its start that orjson takes:
    ``([], 0)`` if there is no usable boundary yet, ``(None, 0)`` if the rest must go to ijson."""
    end = len(buf)
    for _ in range(4):
        end = buf.rfind(b'},{"', 0, end)
        if end < 0:
            return [], 0
        piece = buf[:end + 1]
        if _long_number(piece):
            return None, 0
        try:
            return orjson.loads(b"[" + piece + b"]"), end + 2
        except orjson.JSONDecodeError:
            continue  # a boundary inside a row's own object list, or bad JSON: an earlier one
    return None, 0


def _split_rows(source: BinaryIO) -> Iterator[dict[str, Any]]:
    """The array's rows, parsed by orjson a piece (~1 MB, ~2,000 rows) at a time: about half of
    ijson's CPU for the same rows. A piece ends before a ``},{"`` of the body: that byte sequence
    is always structural (inside a JSON string every ``"`` is escaped, so ``{"`` cannot occur in
    one), i.e. the end of one object and the start of the next in the same array. If it is an
    array inside a row (an object list), the piece does not parse and an earlier ``},{"`` is
    tried. Anything orjson refuses (bad or truncated JSON, pretty-printed bodies without a boundary
    within 16 MB...) or might read differently (a run of 19 digits or more: orjson reads an integer
    beyond 64 bits as a float, ijson as an int) sends the rest of the body, from the first row not
    yet returned, to ijson, which accepts and rejects exactly what it did before."""
    backend = ijson.get_backend("yajl2_c")
    opening = source.read(1)  # the parent starts the stream at the first non-blank byte: '['
    buf = b""
    while data := source.read(PIECE_SIZE):
        buf += data
        rows, cut = _leading_rows(buf)
        if rows is not None:
            yield from rows
            buf = buf[cut:]
        if rows is None or len(buf) > 16 * PIECE_SIZE:
            yield from backend.items(_Rest(opening + buf, source), "item", use_float=True, buf_size=READ_SIZE)
            return
    if buf.strip() == b"]" and opening == b"[":  # an empty array
        return
    try:
        rows = None if _long_number(buf) else orjson.loads(opening + buf)
    except orjson.JSONDecodeError:
        rows = None
    if isinstance(rows, list):
        yield from rows
        return
    yield from backend.items(_Rest(opening + buf, source), "item", use_float=True, buf_size=READ_SIZE)


def _items(source: BinaryIO, first: str) -> Iterator[dict[str, Any]]:
    backend = ijson.get_backend("yajl2_c")
    if first == "[":
        yield from _split_rows(source)
        return
    # The {"array": [...]} wrapper CardTrader uses on /games, tolerated as the in-process parser does.
    seen = False

    def checked():
        nonlocal seen
        for prefix, event, value in backend.parse(source, use_float=True, buf_size=READ_SIZE):
            if prefix == "array" and event == "start_array":
                seen = True
            yield prefix, event, value

    yield from ijson.items(checked(), "array.item")
    if not seen:
        raise _NoArray("export is a JSON object without an 'array' list")


class _NoArray(Exception):
    pass


def _peak_rss_kb() -> int:
    """This process's own peak RSS (VmHWM). Not ``ru_maxrss``: that keeps the parent's size at the
    fork before our exec, which is the import process's, not ours."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _send(out: BinaryIO, kind: bytes, payload: bytes) -> None:
    out.write(FRAME.pack(kind, len(payload)))
    out.write(payload)
    out.flush()


def run(source: BinaryIO, out: BinaryIO, chunk_size: int, first: str) -> int:
    total = 0
    try:
        chunk: dict[Any, Entry] = {}
        for d in _items(source, first):
            entry = export_entry(d)
            chunk[entry[0]] = entry  # deduplicated by product id, as in-process
            if len(chunk) >= chunk_size:
                _send(out, CHUNK, encode_entries(list(chunk.values())))
                total += len(chunk)
                chunk = {}
        if chunk:
            _send(out, CHUNK, encode_entries(list(chunk.values())))
            total += len(chunk)
    except BrokenPipeError:
        return 2  # the parent stopped reading: it is failing or gone
    except BaseException as exc:  # reported to the parent, which raises the matching error
        if isinstance(exc, ijson.JSONError):
            kind = "json"
        elif isinstance(exc, _NoArray):
            kind = "no_array"
        elif isinstance(exc, EncodeError):
            kind = "encode"
        elif isinstance(exc, (KeyError, TypeError, ValueError, AttributeError)):
            kind = "shape"
        else:
            kind = "internal"
        # A KeyError's str() is the repr of its key: send the key, so the parent's KeyError reads the same.
        message = str(exc.args[0]) if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
        try:
            _send(out, ERROR, orjson.dumps({"kind": kind, "type": type(exc).__name__, "message": message[:2000]}))
        except BrokenPipeError:
            pass
        return 1
    times = os.times()
    _send(out, DONE, orjson.dumps({"rows": total, "peak_rss_kb": _peak_rss_kb(), "cpu_s": times[0] + times[1]}))
    return 0


def main(argv: list[str]) -> int:
    chunk_size, first, parent = int(argv[1]), argv[2], int(argv[3])
    die_with_parent(parent)
    # Nothing this process makes has reference cycles (JSON values, rows, bytes): reference counting
    # frees it all, and the collector's passes over the chunk being built cost ~10 % of the CPU.
    gc.disable()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # a vanished parent ends us quietly
    source = os.fdopen(sys.stdin.fileno(), "rb", buffering=READ_SIZE, closefd=False)
    out = os.fdopen(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)
    return run(source, out, chunk_size, first)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
