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
