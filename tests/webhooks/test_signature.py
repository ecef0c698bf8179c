"""The signature test vector (Standard Webhooks' cases adapted to CardTrader's scheme).

The expected value was computed outside Python with
``printf '%s' BODY | openssl dgst -sha256 -hmac SECRET -binary | base64``, so the vector checks
our HMAC/base64/UTF-8-key choices against an independent implementation.
"""
from __future__ import annotations

import pytest

from syncops.webhook_signature import sign, verify

BODY = (
    b'{"id":"5b1c1a4e-0d1f-4c5e-9d0a-8f6c2b7e9a11","time":1732665600,"cause":"order.create",'
    b'"object_class":"Order","object_id":733733,"mode":"live","data":{}}'
)
SECRET = "c2VjcmV0LXNoYXJlZC0xMjM0NTY3ODkw"
OPENSSL_SIGNATURE = "JDlvxiJR2Xnl0B6Z8JI1Us595HEFr7SLpdTjH7mcw5Y="


def test_sign_matches_openssl():
    assert sign(BODY, SECRET) == OPENSSL_SIGNATURE


@pytest.mark.parametrize(
    ("body", "secret", "header", "ok"),
    [
        pytest.param(BODY, SECRET, OPENSSL_SIGNATURE, True, id="valid"),
        pytest.param(BODY.replace(b"733733", b"733734"), SECRET, OPENSSL_SIGNATURE, False, id="one-changed-byte"),
        pytest.param(BODY, SECRET + "x", OPENSSL_SIGNATURE, False, id="wrong-secret"),
        pytest.param(BODY, "a-different-sellers-secret-0000", OPENSSL_SIGNATURE, False, id="other-sellers-secret"),
        pytest.param(BODY, SECRET, None, False, id="missing-header"),
        pytest.param(BODY, SECRET, "", False, id="empty-header"),
        pytest.param(BODY, SECRET, f"  {OPENSSL_SIGNATURE}\t", True, id="stray-whitespace"),
        pytest.param(BODY, SECRET, OPENSSL_SIGNATURE.rstrip("="), False, id="padding-stripped"),
        pytest.param(BODY, SECRET, OPENSSL_SIGNATURE.lower(), False, id="case-changed"),
        pytest.param(BODY, "", sign(BODY, ""), False, id="empty-secret-never-verifies"),
        pytest.param(BODY, SECRET, "é" + OPENSSL_SIGNATURE, False, id="non-ascii-header"),
    ],
)
def test_verify_vector(body: bytes, secret: str, header: str | None, ok: bool):
    assert verify(body, secret, header) is ok


def test_every_single_byte_change_is_refused():
    for i in range(len(BODY)):
        tampered = bytearray(BODY)
        tampered[i] ^= 0x01
        assert not verify(bytes(tampered), SECRET, OPENSSL_SIGNATURE), i


def test_key_is_the_secret_utf8_not_hex_decoded():
    secret = "deadbeef"  # looks like hex; CardTrader's clients use the string's bytes as the key
    import base64
    import hashlib
    import hmac

    as_bytes = base64.b64encode(hmac.new(bytes.fromhex(secret), BODY, hashlib.sha256).digest()).decode()
    assert not verify(BODY, secret, as_bytes)
    assert verify(BODY, secret, sign(BODY, secret))
