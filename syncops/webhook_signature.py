"""CardTrader's webhook signature: base64(HMAC-SHA256(key=shared_secret as UTF-8, msg=raw body)).

Kept apart from the view and the service so the test vector exercises exactly the code the
endpoint runs, and so the sandbox-facing bench can sign with the same function.
"""
from __future__ import annotations

import base64
import hashlib
import hmac


def sign(body: bytes, shared_secret: str) -> str:
    """The header value CardTrader sends for ``body`` (standard base64, with padding)."""
    digest = hmac.new(shared_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, shared_secret: str, header_value: str | None) -> bool:
    """True only when ``header_value`` is the signature of ``body`` under ``shared_secret``.

    Surrounding whitespace is tolerated (proxies and some HTTP stacks add it); an empty secret
    never verifies, so a seller without a stored secret cannot be written to by anyone. The
    comparison is constant-time over the ASCII bytes, so timing does not reveal a prefix.
    """
    if not header_value or not shared_secret:
        return False
    candidate = header_value.strip().encode("ascii", errors="replace")
    expected = sign(body, shared_secret).encode("ascii")
    return hmac.compare_digest(candidate, expected)
