"""No token, shared secret, Authorization header or webhook signature in any log line.

The logs of real flows are captured through the project's own pipeline (formatter + filters)
at DEBUG and scanned for the exact secret values: a CardTrader client talking to the sandbox
with a real sandbox token (good and rejected), webhook deliveries signed with a shop's shared
secret (accepted and forged), API calls with Bearer and Api-Key headers, and a deliberately
careless view that logs headers, a secret and an exception quoting the token.
"""
from __future__ import annotations

import logging
import uuid

import pytest

from brxsync.observability.redaction import (
    REDACTED,
    RedactingFilter,
    forget_secret,
    redact_text,
    redact_value,
    register_secret,
)
from tests.webhooks import builders
from tests.webhooks.conftest import make_shop

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWxsZXIifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"


@pytest.mark.django_db
def test_flows_never_log_secrets(client, probe_urls, sandbox_settings, sandbox_account, json_logs):
    from syncops.cardtrader.client import CardTraderClient

    token = sandbox_account.token
    base = sandbox_settings.CARDTRADER_API_BASE
    with CardTraderClient(token=token, seller_id="scan", base_url=base) as ct:
        ct.info()
        logging.getLogger("tests.scan").info("client %r", ct)
    with CardTraderClient(token=token + "x", seller_id="scan", base_url=base) as ct:
        with pytest.raises(Exception):  # rejected token: the error path logs too
            ct.info()

    shop = make_shop()
    body, signature = builders.signed(
        builders.delivery(builders.order(int(uuid.uuid4().int % 10**9), "paid", []), mode="test"), shop.secret)
    assert client.post(shop.url, data=body, content_type="application/json",
                       HTTP_SIGNATURE=signature).status_code == 200
    assert client.post(shop.url, data=body + b" ", content_type="application/json",
                       HTTP_SIGNATURE=signature).status_code == 401

    api_key = f"brx_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    client.get(f"/api/v1/sellers/{uuid.uuid4()}/status", HTTP_AUTHORIZATION=f"Bearer {JWT}")
    client.get(f"/api/v1/sellers/{uuid.uuid4()}/status", HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    response = client.get("/obs/careless/", {"s": shop.secret, "t": token},
                          HTTP_AUTHORIZATION=f"Bearer {JWT}", HTTP_SIGNATURE=signature,
                          HTTP_COOKIE="sessionid=abc123def456")
    assert response.status_code == 200

    text = json_logs.text
    # Non-vacuous: the flows did log, including the careless lines, and redaction happened.
    events = {r["event"] for r in json_logs.records()}
    assert any(e.startswith("incoming headers") for e in events) and "call failed" in events
    assert any("cardtrader" in r.get("event", "") for r in json_logs.records())
    assert text.count(REDACTED) >= 6
    for secret in (token, shop.secret, signature, JWT, api_key, "abc123def456"):
        assert secret not in text, f"secret leaked: {secret[:6]}..."
    # The shared secret is a bare hex string: it is caught by its key, not its shape.
    careless = [r for r in json_logs.records() if r.get("component") == "tests.observability.careless"]
    assert careless and all(shop.secret not in str(r) for r in careless)


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("{'Authorization': 'Api-Key brx_0123456789abcdef'}", "brx_0123456789abcdef"),
        (f"token {JWT}", JWT),
        (f"decoded {JWT} fine", JWT),
        ("ciphertext gAAAAABnZXN0LW9ubHktZmVybmV0LWtleS0wMDAwMDA=", "gAAAAABnZXN0"),
        ("Signature: q0VwCkG3Lk1n0r1zB0aWkY3JqS8Xy2h3c4e5f6g7h8i=", "q0VwCkG3Lk1n0r1zB0aWkY3JqS8Xy2h3c4e5f6g7h8i="),
        ('{"shared_secret": "deadbeefcafebabe"}', "deadbeefcafebabe"),
        ("password=hunter2hunter2&x=1", "hunter2hunter2"),
    ],
)
def test_shapes_are_redacted(text, leak):
    assert leak not in redact_text(text)


def test_ordinary_text_is_left_alone():
    line = "pushed 100 items for seller 3f2a in 1.2 s (tokens_consumed=100, webhook_id=abc)"
    assert redact_text(line) == line
    assert redact_value({"tokens_consumed": 5, "webhook_id": "w1", "count": 3}) == {
        "tokens_consumed": 5, "webhook_id": "w1", "count": 3}


def test_registered_secret_values_are_cut_anywhere():
    secret = uuid.uuid4().hex
    assert secret in redact_text(f"using {secret} now")
    register_secret(secret)
    try:
        assert redact_text(f"using {secret} now") == f"using {REDACTED} now"
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "a=%s", (secret,), None)
        RedactingFilter().filter(record)
        assert secret not in record.getMessage()
    finally:
        forget_secret(secret)
    assert secret in redact_text(f"using {secret} now")


def test_sentry_events_are_scrubbed():
    from brxsync.sentry import scrub_event

    event = {
        "request": {"headers": {"Authorization": f"Bearer {JWT}", "Signature": "x" * 43 + "=", "Accept": "*/*"},
                    "data": '{"secret": 1}', "cookies": {"sessionid": "s"}},
        "exception": {"values": [{"value": f"refused Bearer {JWT}",
                                  "stacktrace": {"frames": [{"vars": {"token": "tok-123456789", "n": 1}}]}}]},
        "breadcrumbs": {"values": [{"message": "shared_secret=abcdefabcdef"}]},
    }
    out = scrub_event(event)
    text = str(out)
    assert JWT not in text and "tok-123456789" not in text and "abcdefabcdef" not in text and "x" * 43 not in text
    assert out["request"]["headers"]["Accept"] == "*/*" and out["request"]["data"] == REDACTED
    assert out["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"]["n"] == 1


def test_sentry_sends_only_scrubbed_events(settings):
    """sentry-sdk end to end with a capturing transport (there is no Sentry server here)."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    from brxsync.sentry import init_sentry

    sent: list = []

    class Capture(Transport):
        def capture_envelope(self, envelope):
            sent.append(envelope)

    init_sentry("https://public@sentry.example/1", transport=Capture)
    try:
        token = f"tok-{uuid.uuid4().hex}"
        register_secret(token)
        try:
            raise RuntimeError(f"CardTrader said no to Bearer {token}")
        except RuntimeError as exc:
            sentry_sdk.capture_exception(exc)
        sentry_sdk.flush()
    finally:
        forget_secret(token)
        sentry_sdk.init(dsn=None)
    assert sent
    payload = b"".join(item.get_bytes() for env in sent for item in env.items)
    assert token.encode() not in payload and b"RuntimeError" in payload


# --- the fast paths (redaction runs on every field of every line, so it skips what cannot match) ---


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("token=abcd", "abcd"),  # the shortest text a shape matches (10 characters)
        ("TOKEN=abcdefgh", "abcdefgh"),  # upper case: the gates compare lower-cased text
        ("X-Api-Key: abcdefgh1234", "abcdefgh1234"),
        ("API_KEY=abcdefgh", "abcdefgh"),
        ("AUTHORIZATION: BASIC dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        # Non-ASCII text takes no shortcut: case-insensitive matching folds these onto ASCII letters.
        ("to\u212aen=abcdefgh", "abcdefgh"),  # Kelvin sign for k
        ("\u017fecret=abcdefgh", "abcdefgh"),  # long s
        ("author\u0131zation=abcdefgh", "abcdefgh"),  # dotless i
    ],
)
def test_gated_shapes_are_still_redacted(text, leak):
    assert leak not in redact_text(text)


def test_short_registered_secret_is_cut_even_below_the_shape_length():
    secret = "k9Q!x2#Z"  # 8 characters: the shortest value register_secret keeps
    register_secret(secret)
    try:
        assert redact_text(secret) == REDACTED
        assert redact_text(f"s={secret}") == f"s={REDACTED}"
    finally:
        forget_secret(secret)


def test_registered_secrets_are_cut_whole_whatever_their_number():
    """The prefix-tree pattern against the plain rule: each registered value is cut, the longest
    where two start at the same place, with more values registered than are kept (LRU)."""
    import random

    from brxsync.observability import redaction

    rnd = random.Random(7)
    values = [f"{uuid.uuid4().hex}" for _ in range(600)]
    nested = ["0123456789ab", "0123456789abcdef", "0123456789abXY"]  # prefixes of one another
    try:
        for v in values + nested:
            register_secret(v)
        kept = values[-(redaction._MAX_KNOWN - len(nested)):] + nested
        for v in rnd.sample(kept[:-3], 50) + nested:
            assert redact_text(f"a {v} b") == f"a {REDACTED} b"
            assert redact_text(f"x{v}y") == f"x{REDACTED}y"
        assert redact_text("0123456789abcdef!") == f"{REDACTED}!"  # the longer one, not "[REDACTED]cdef"
        evicted = values[0]
        assert redact_text(f"a {evicted} b") == f"a {evicted} b"
    finally:
        for v in values + nested:
            forget_secret(v)


def test_registering_many_secrets_compiles_once_per_batch_and_each_is_cut_at_once(monkeypatch):
    """A process serving more sellers than the LRU holds registers a new value on most decrypts:
    compiling the regex (~40 ms at 512 values) per registration would eat its CPU. Values wait in
    a small pending list, exact from the start, and the regex is rebuilt once per batch."""
    from brxsync.observability import redaction

    compiles = []
    real = redaction._literals_pattern

    def counting(values):
        compiles.append(len(values))
        return real(values)

    monkeypatch.setattr(redaction, "_literals_pattern", counting)
    monkeypatch.setattr(redaction, "_PENDING_SECONDS", 3600.0)  # batches only, however slow the machine
    keep = uuid.uuid4().hex
    register_secret(keep)
    values = [uuid.uuid4().hex for _ in range(300)]
    try:
        for v in values:
            register_secret(v)
            assert redact_text(f"<{v}>") == f"<{REDACTED}>", "cut from the moment it is registered"
        # + 2: values left pending by earlier tests may be folded once on their own clock
        assert len(compiles) <= len(values) // redaction._PENDING_MAX + 2, compiles
        before = len(compiles)
        for v in values:
            forget_secret(v)
        assert redact_text(f"<{values[0]}>") == f"<{values[0]}>"
        assert redact_text(f"<{keep}>") == f"<{REDACTED}>"
        assert len(compiles) == before + 1, "one rebuild for any number of forgets"
    finally:
        for v in (keep, *values):
            forget_secret(v)


def test_pending_values_are_folded_into_the_regex_once_old_enough(monkeypatch):
    """A quiet process must not keep paying a substring search per pending value per string."""
    from brxsync.observability import redaction

    monkeypatch.setattr(redaction, "_PENDING_SECONDS", 0.0)
    value = uuid.uuid4().hex
    try:
        register_secret(value)
        assert redact_text(f"<{value}>") == f"<{REDACTED}>"
        compiled, pending = redaction._known._state
        assert pending == () and compiled is not None and compiled.search(value)
    finally:
        forget_secret(value)


@pytest.mark.parametrize("order", ["short_compiled", "long_compiled"])
def test_a_pending_value_and_a_compiled_one_overlapping_are_cut_as_one(order):
    """One of two values that start at the same place is in the compiled regex, the other still
    pending: the longer is cut whole either way, never leaving its tail."""
    from brxsync.observability import redaction

    short, long = "fedcba9876543210", "fedcba9876543210XYZW"
    first, second = (short, long) if order == "short_compiled" else (long, short)
    filler = [uuid.uuid4().hex for _ in range(redaction._PENDING_MAX)]
    try:
        register_secret(first)
        for v in filler:  # the batch fills: the regex is rebuilt with ``first`` in it
            register_secret(v)
        register_secret(second)  # pending
        assert redact_text(f"{long}!") == f"{REDACTED}!"
        assert redact_text(f"a {short} b {long}") == f"a {REDACTED} b {REDACTED}"
    finally:
        for v in (first, second, *filler):
            forget_secret(v)


def test_structlog_events_are_redacted_once_and_foreign_records_in_the_formatter(json_logs, monkeypatch):
    """A structlog event is redacted at the end of structlog's chain and not scanned again by the
    formatter; a stdlib record is redacted by the formatter, bound context included (which
    ``RedactingFilter`` never sees)."""
    import structlog

    from brxsync.observability import context, logs

    calls = []
    real = logs.redact_event

    def counting(*args):
        calls.append(args[2].get("event"))
        return real(*args)

    monkeypatch.setattr(logs, "redact_event", counting)
    context.bind(api_key="ctx-secret-0123456789")
    try:
        structlog.get_logger("tests.once").info("structlog line", token="tok-0123456789", note=f"Bearer {JWT}")
        logging.getLogger("tests.once").info("stdlib line %s", f"Bearer {JWT}")
    finally:
        structlog.contextvars.unbind_contextvars("api_key")

    # The formatter (one per handler: stderr's and the capture's) scanned the foreign record only.
    assert calls and set(calls) == {"stdlib line Bearer [REDACTED]"}
    lines = {r["event"]: r for r in json_logs.records() if r.get("component") == "tests.once"}
    structlog_line, stdlib_line = lines["structlog line"], lines["stdlib line Bearer [REDACTED]"]
    assert structlog_line["token"] == REDACTED and JWT not in structlog_line["note"]
    assert structlog_line["api_key"] == REDACTED and stdlib_line["api_key"] == REDACTED
    assert "ctx-secret-0123456789" not in json_logs.text and "tok-0123456789" not in json_logs.text
    assert not any(k.startswith("_") for r in (structlog_line, stdlib_line) for k in r)  # no formatter meta keys


class _Holder:
    """An object whose text quotes a secret (a model row, a client, a request: a repr that echoes)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"_Holder(value={self.value})"

    __str__ = __repr__


def test_objects_inside_containers_and_extra_fields_are_rendered_and_scanned(json_logs):
    """An object nested in a dict or list of an event, or passed alone in a stdlib record's
    ``extra``, reaches the JSON renderer as ``str()``/``repr()`` text: it is scanned like any string.
    Plain data is written as before (numbers stay numbers, a datetime as the renderer writes it)."""
    import datetime

    import structlog

    secret = f"nested-secret-{uuid.uuid4().hex}"
    register_secret(secret)
    when = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)
    try:
        structlog.get_logger("tests.nested").info(
            "structlog nested", details={"holder": _Holder(secret), "count": 3, "at": when},
            items=[_Holder(secret), 7], deep=[[[[[[[[[[_Holder(secret)]]]]]]]]]])
        logging.getLogger("tests.nested").info("stdlib nested", extra={
            "holder": _Holder(secret), "details": {"inner": [_Holder(secret)]}, "size": 5})
    finally:
        forget_secret(secret)

    assert secret not in json_logs.text
    lines = {r["event"]: r for r in json_logs.records() if r.get("component") == "tests.nested"}
    structlog_line, stdlib_line = lines["structlog nested"], lines["stdlib nested"]
    assert structlog_line["details"]["holder"] == f"_Holder(value={REDACTED})"
    assert structlog_line["details"]["count"] == 3 and structlog_line["items"][1] == 7
    assert structlog_line["details"]["at"] == repr(when)
    assert structlog_line["items"][0] == f"_Holder(value={REDACTED})"
    assert stdlib_line["holder"] == f"_Holder(value={REDACTED})"
    assert stdlib_line["details"] == {"inner": [f"_Holder(value={REDACTED})"]}
    assert stdlib_line["size"] == 5


def test_an_object_whose_repr_fails_is_named_not_fatal():
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert redact_value({"x": [Broken()]}) == {"x": ["<Broken: repr failed>"]}
