"""One place that keeps secrets out of every log line, whoever wrote the call.

Call sites are not trusted to remember: a ``logger.info("%s", headers)`` in a library, an
exception message that echoes a request, a ``repr`` of a settings row. So redaction runs on the
finished record, twice over:

* ``redact_event`` is the last processor before rendering, for structlog events (at the end of
  structlog's chain: nothing is added to the event after it, so the formatter does not scan it
  again) and for stdlib records (in ``ProcessorFormatter``'s tail);
* ``RedactingFilter`` sits on every handler ``brxsync.observability.logs`` installs, so a record
  is already clean when another formatter (or Sentry's logging breadcrumbs) sees it.

Three nets, widest last: values under a sensitive *key* are dropped whole; strings are scanned
for credential *shapes* (Bearer / Api-Key / JWT / Fernet token / base64 HMAC / ``secret=...``);
and literal secret *values* registered at runtime (``register_secret``) are cut out wherever
they appear, which is the only way to catch a random shared secret that has no shape.
"""
from __future__ import annotations

import datetime
import decimal
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"

# Keys whose value is a secret whatever it looks like (compared lower-case, "-" as "_").
_SENSITIVE_KEY = re.compile(
    r"(^|_)(token|cardtrader_token|access_token|refresh_token|secret|shared_secret|client_secret|password|passwd"
    r"|authorization|proxy_authorization|signature|http_signature|http_authorization|api_key|apikey|cookie"
    r"|set_cookie|http_cookie|session|sessionid|csrftoken|fernet_keys|secret_key|dsn|private_key)$"
)
# Keys that contain a sensitive word but hold no secret (counts, flags, ids of things).
_ALLOWED_KEYS = frozenset({"token_count", "tokens_consumed", "webhook_id", "has_token", "signature_valid"})

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values, with any scheme we use or receive.
    (re.compile(r"(?i)\b(bearer|api-key|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # JWTs (CardTrader tokens and Ebartex seller tokens are JWTs): header.payload[.signature]
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*)?"), REDACTED),
    # Fernet tokens (our ciphertexts start with version byte 0x80 -> "gAAAAA").
    (re.compile(r"\bgAAAAA[A-Za-z0-9_-]{20,}={0,2}"), REDACTED),
    # A base64 HMAC-SHA256 (CardTrader's Signature header value): 43 chars + one "=".
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])"), REDACTED),
    # key=value / key: value / "key": "value" for sensitive keys inside free text.
    (
        re.compile(
            r"(?i)([\"']?\b(?:[a-z_]*token|[a-z_]*secret|password|authorization|signature|api[_-]?key|cookie)"
            r"[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])([^\s\"',;}&]{4,})"
        ),
        r"\1" + REDACTED,
    ),
)

_MAX_KNOWN = 512
_MIN_KNOWN_LEN = 8


class _KnownSecrets:
    """Literal secret values seen by this process (bounded LRU), matched as one compiled regex plus
    the few values registered since it was compiled.

    Compiling the regex over 512 values costs ~40 ms. ``crypto.decrypt`` registers every plaintext,
    so a process serving more sellers than the LRU holds registers a new value on most decrypts.
    Recompiling on each one cost 40 ms a time: the secret-scan test's 600 registrations took 130 s,
    and a web process verifying 10,000 sellers' webhooks would have spent most of its CPU
    compiling. New values now wait in ``pending`` (plain substring search, exact from the moment
    they are added), and the regex is rebuilt once ``_PENDING_MAX`` have gathered or the oldest has
    waited ``_PENDING_SECONDS``. A
    forgotten value is dropped at the next use (one rebuild for any number of ``forget_secret``);
    an evicted one stays in the compiled regex until the next rebuild: redacted a little longer
    than needed, never leaked.
    """

    def __init__(self) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        # (compiled regex or None, values not in it yet): replaced whole, so a reader takes one
        # consistent pair without the lock.
        self._state: tuple[re.Pattern[str] | None, tuple[str, ...]] = (None, ())
        self._stale = False  # a value was discarded: rebuild before the next match
        self._fold_at = 0.0  # when values pending since then are folded into the regex

    def add(self, value: str) -> None:
        if not value or len(value) < _MIN_KNOWN_LEN:
            return  # short values would redact ordinary words; shapes and keys still apply
        with self._lock:
            if value in self._values:
                self._values.move_to_end(value)
                return
            self._values[value] = None
            while len(self._values) > _MAX_KNOWN:
                self._values.popitem(last=False)
            compiled, pending = self._state
            if self._stale or len(pending) + 1 >= _PENDING_MAX:
                self._rebuild()
            else:
                if not pending:
                    self._fold_at = time.monotonic() + _PENDING_SECONDS
                self._state = (compiled, (*pending, value))

    def discard(self, value: str) -> None:
        """Forget ``value``; the regex is rebuilt at the next use, once for any number of discards."""
        with self._lock:
            if self._values.pop(value, 1) is None:
                self._stale = True

    def _rebuild(self) -> None:  # with the lock held
        self._state = (_literals_pattern(self._values) if self._values else None, ())
        self._stale = False

    def _fresh_state(self) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
        with self._lock:
            if self._stale or (self._state[1] and time.monotonic() >= self._fold_at):
                self._rebuild()
            return self._state

    def sub(self, text: str) -> str:
        """``text`` with every known value cut, the longest where several overlap."""
        compiled, pending = self._state
        if self._stale or (pending and time.monotonic() >= self._fold_at):
            compiled, pending = self._fresh_state()
        found = [v for v in pending if v in text]
        if not found:
            return compiled.sub(REDACTED, text) if compiled is not None else text
        spans = [m.span() for m in compiled.finditer(text)] if compiled is not None else []
        for v in found:
            at = text.find(v)
            while at != -1:
                spans.append((at, at + len(v)))
                at = text.find(v, at + 1)
        spans.sort()
        out, pos = [], 0
        start, end = spans[0]
        for s, e in spans[1:]:
            if s < end:  # overlapping: cut as one
                end = max(end, e)
                continue
            out += (text[pos:start], REDACTED)
            pos, start, end = end, s, e
        out += (text[pos:start], REDACTED, text[end:])
        return "".join(out)


_PENDING_MAX = 64
# Pending values cost a substring search each per logged string: folded into the regex once this old,
# so a quiet process matches with the regex alone, and a busy one rebuilds at most this often
# (or per _PENDING_MAX values).
_PENDING_SECONDS = 2.0


_known = _KnownSecrets()


def _literals_pattern(values: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of ``values``, the longest one where several start at a position (so
    a secret that contains another is cut whole).

    Built as a prefix tree (``ab(?:c|d(?:e)?)``) rather than a flat ``abc|abde|abd``: at each position
    the flat form tries every value in turn, so its cost grew with the number of registered secrets
    (~30 µs per 36-character log value with 500 registered, which a web process serving 500 sellers'
    webhooks has); the tree form walks one path (~3 µs). Greedy ``?`` prefers the longer value.
    """
    root: dict[str, Any] = {}
    for value in values:
        node = root
        for ch in value:
            node = node.setdefault(ch, {})
        node[""] = None  # a value ends here

    def build(node: dict[str, Any]) -> str:
        # Unbranched runs are emitted in a loop: recursion happens only at branch points.
        out = []
        while True:
            children = [ch for ch in node if ch]
            if len(children) == 1 and "" not in node:
                out.append(re.escape(children[0]))
                node = node[children[0]]
                continue
            break
        if children:
            group = "(?:" + "|".join(re.escape(ch) + build(node[ch]) for ch in sorted(children)) + ")"
            out.append(group + "?" if "" in node else group)
        return "".join(out)

    try:
        return re.compile(build(root))
    except RecursionError:  # values crafted to branch at every character: the flat form still works
        return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))


def register_secret(value: str | None) -> None:
    """Make this process redact ``value`` wherever it appears from now on.

    For secrets with no recognisable shape (a CardTrader shared secret, a sandbox token): the
    place that decrypts a secret registers it, so even an unkeyed mention is cut.
    """
    if value:
        _known.add(str(value))


def forget_secret(value: str) -> None:
    _known.discard(value)


def is_sensitive_key(key: object) -> bool:
    return _is_sensitive_name(key if type(key) is str else str(key))


@lru_cache(maxsize=4096)
def _is_sensitive_name(key: str) -> bool:
    """Keys come from code (field names, ``extra=`` names, header names): a small set, so the
    answer is cached instead of running the key regex on every field of every line."""
    k = key.lower().replace("-", "_")
    return k not in _ALLOWED_KEYS and bool(_SENSITIVE_KEY.search(k))


# What each shape in ``_PATTERNS`` cannot match without (its literal part), checked on ASCII text
# before the regex runs: most log values (levels, routes, ids, timestamps) contain none of them, and
# a case-insensitive regex scans the whole string at every position even when nothing can match.
_MIN_SHAPE_LEN = 10  # the shortest text a shape matches: "token=abcd"
(_SCHEME, _SCHEME_SUB), (_JWT, _), (_FERNET, _), (_HMAC, _), (_KEYED, _KEYED_SUB) = _PATTERNS


def redact_text(text: str) -> str:
    if len(text) < _MIN_KNOWN_LEN:
        return text  # shorter than any registered secret and than any shape
    text = _known.sub(text)
    if len(text) < _MIN_SHAPE_LEN:
        return text
    if not text.isascii():
        # Case-insensitive matching folds some non-ASCII letters onto ASCII ones (the Kelvin sign
        # onto "k", dotless i onto "i"): no shortcut, every shape runs.
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text
    # A substitution only removes text or inserts "[REDACTED]" (which holds none of the literals
    # below) next to text already there, so gates checked on the text before it stay valid.
    # The word lists are spelled out (not any() over a tuple): this runs for every string field of
    # every log line, and a chain of ``in`` tests costs half as much as a generator.
    lower = text.lower()
    if "token" in lower or "bearer" in lower or "basic" in lower or "api-key" in lower:
        text = _SCHEME.sub(_SCHEME_SUB, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "gAAAAA" in text:
        text = _FERNET.sub(REDACTED, text)
    has_equals = "=" in text
    if has_equals and len(text) >= 44:
        text = _HMAC.sub(REDACTED, text)
    if (has_equals or ":" in text) and (
        "token" in lower or "secret" in lower or "password" in lower or "authorization" in lower
        or "signature" in lower or "cookie" in lower or "apikey" in lower or "api_key" in lower
        or "api-key" in lower
    ):
        text = _KEYED.sub(_KEYED_SUB, text)
    return text


# Values passed through as they are inside containers: numbers, times and ids, whose text is fixed.
_PLAIN_TYPES = (datetime.date, datetime.time, datetime.timedelta, uuid.UUID, decimal.Decimal)


def redact_value(value: Any, _depth: int = 0) -> Any:
    """``value`` with secrets removed; containers are copied, never mutated in place."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if _depth > 6:
        return _scanned_repr(value)  # deeper than any line we write: scanned as text, whole
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_sensitive_key(k) else redact_value(v, _depth + 1)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, _depth + 1) for v in value]
    if isinstance(value, _PLAIN_TYPES):
        return value  # its text cannot carry a secret; the renderer writes it as it always has
    # Any other object (a model row, a client, a request) is written by the JSON renderer as its
    # repr, after this scan: render it here, so what it quotes is scanned like any string.
    return _scanned_repr(value)


def _scanned_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not lose the log line
        return f"<{type(value).__name__}: repr failed>"
    return redact_text(text)


def redact_event(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: run last before the renderer (after exception formatting)."""
    for key, value in list(event_dict.items()):
        if key != "event" and is_sensitive_key(key):
            event_dict[key] = REDACTED
        elif type(value) is str:  # most fields: the common case first
            event_dict[key] = redact_text(value)
        elif value is None or type(value) in (int, float, bool):
            continue
        elif isinstance(value, str | bytes | Mapping | list | tuple | set | frozenset):
            event_dict[key] = redact_value(value)
        elif value is not None and not isinstance(value, bool | int | float):
            # Objects (exceptions, models, requests) are rendered with str()/repr() by the
            # renderer; render them here so the text is scanned.
            event_dict[key] = redact_text(str(value))
    return event_dict


_RECORD_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Cleans a stdlib record in place: message, args, exception text and ``extra`` fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict) and hasattr(record, "_logger"):
            return True  # a structlog event: ``redact_event`` already ran in its chain
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
            # The formatted text replaces the live traceback, whose locals and message would
            # otherwise be formatted again (unredacted) by the next formatter.
            record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if key in _RECORD_STANDARD or key.startswith("_"):
                continue
            if is_sensitive_key(key):
                record.__dict__[key] = REDACTED
            elif isinstance(value, str | bytes | Mapping | list | tuple):
                record.__dict__[key] = redact_value(value)
        return True
