"""Incremental parsing of ``GET /products/export``.

CardTrader answers the whole inventory as one JSON array (250,000 products for a big shop, with no
pagination). Reading it with ``response.json()`` would hold the body, the parsed list and our
objects at once; here ijson's C backend (yajl2_c) reads the socket in 64 KiB chunks and hands over
one product dict at a time, so memory stays flat whatever the inventory size.

A stream that ends early (connection dropped, proxy cut, truncated JSON) raises: an import must
never mistake a partial export for the whole inventory, or it would mark the rest as gone.

The C backend is asked for by name: ijson silently falls back to its pure-Python backend (about
20 times slower) when the compiled one is missing, and an import would then spend most of its
time parsing. ``IJSON_BACKEND`` says which one this process got (a test pins it to yajl2_c).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import ijson
import requests
import urllib3.exceptions

from . import errors, transport
from .types import Product

logger = logging.getLogger(__name__)

try:
    _ijson = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - only where the compiled wheel is unavailable
    logger.warning("ijson's C backend (yajl2_c) is unavailable; the export is parsed by %s (much slower)",
                   ijson.backend)
    _ijson = ijson
IJSON_BACKEND: str = getattr(_ijson, "backend_name", None) or _ijson.backend

CHUNK = 64 * 1024
_WHITESPACE = b" \t\r\n\xef\xbb\xbf"  # and a UTF-8 BOM


class _ExportSource:
    """A file-like view of the raw (decoded) body that can peek at the first byte and turns
    urllib3's mid-stream failures into the client's taxonomy."""

    def __init__(self, response: requests.Response, method: str, path: str) -> None:
        self._raw = response.raw
        self._raw.decode_content = True  # gzip/deflate if CardTrader compresses
        self._method = method
        self._path = path
        self._pending = b""
        self.bytes_read = 0

    def _read_raw(self, size: int) -> bytes:
        try:
            data = self._raw.read(size)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise transport.error_for_exception(self._method, self._path, exc) from None
        self.bytes_read += len(data or b"")
        return data or b""

    def first_byte(self) -> bytes:
        """The first non-whitespace byte ('' for an empty body), without consuming it."""
        while True:
            stripped = self._pending.lstrip(_WHITESPACE)
            if stripped:
                self._pending = stripped
                return stripped[:1]
            chunk = self._read_raw(CHUNK)
            if not chunk:
                return b""
            self._pending += chunk

    def peek(self, size: int) -> bytes:
        while len(self._pending) < size:
            chunk = self._read_raw(CHUNK)
            if not chunk:
                break
            self._pending += chunk
        return self._pending[:size]

    def read(self, size: int = -1) -> bytes:
        if self._pending:
            if size < 0 or size >= len(self._pending):
                data, self._pending = self._pending, b""
                return data
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self._read_raw(CHUNK if size < 0 else size)


class NotAnArray(Exception):
    """A ``parse`` hook's report that the body was a JSON object without an ``array`` list."""


def _checked_events(events: Iterator[tuple[str, str, Any]], state: dict[str, bool]) -> Iterator[tuple[str, str, Any]]:
    for prefix, event, value in events:
        if prefix == "array" and event == "start_array":
            state["seen"] = True
        yield prefix, event, value


def stream_products(response: requests.Response, *, method: str, path: str,
                    convert: Callable[[dict[str, Any]], Any] = Product.from_json,
                    parse: Callable[[Any, bytes], Iterator[Any]] | None = None) -> Iterator[Any]:
    """Each export row through ``convert`` (a ``Product`` by default). A row ``convert`` rejects
    (KeyError / TypeError / ValueError) becomes the client's ``UnexpectedResponse``.

    ``parse(source, first_byte)``, if given, parses the body instead and yields what it likes (the
    import's parser process, ``syncops.services.export_process``): ``source.read(size)`` gives the
    raw body from its first non-blank byte, already checked to be ``[`` or ``{``. It reports bad
    JSON as ``ijson.JSONError``, a body without the array as ``NotAnArray``, and a bad row as the
    KeyError / TypeError / ValueError ``convert`` would have raised, so the errors are the same."""
    source = _ExportSource(response, method, path)
    first = source.first_byte()
    content_type = response.headers.get("Content-Type", "")
    if first not in (b"[", b"{"):
        raise errors.UnexpectedResponse(
            "export is not a JSON array: " + transport.summarise_body(source.peek(4096), content_type),
            status=response.status_code, method=method, path=path,
        )
    try:
        if parse is not None:
            yield from parse(source, first)
        elif first == b"[":
            for row in _ijson.items(source, "item", use_float=True, buf_size=CHUNK):
                yield convert(row)
        else:
            # Tolerate the {"array": [...]} wrapper CardTrader uses on /games. Events pass through
            # Python here (slower), but this form has never been seen on the export.
            state = {"seen": False}
            events = _checked_events(_ijson.parse(source, use_float=True, buf_size=CHUNK), state)
            for row in ijson.items(events, "array.item"):
                yield convert(row)
            if not state["seen"]:
                raise errors.UnexpectedResponse("export is a JSON object without an 'array' list",
                                                status=response.status_code, method=method, path=path)
    except NotAnArray as exc:
        raise errors.UnexpectedResponse(str(exc), status=response.status_code, method=method, path=path) from None
    except ijson.JSONError as exc:
        raise errors.UnexpectedResponse(
            f"export body is invalid or truncated JSON near byte {source.bytes_read} "
            f"({str(exc)[:transport.MAX_MESSAGE]})",
            status=response.status_code, method=method, path=path,
        ) from None
