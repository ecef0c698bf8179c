"""The factories: settings decide base URL and timeouts, the seller's stored token is used, the
guard defaults to the limiter's when it exists, and the token never reaches a log line."""
from __future__ import annotations

import logging

import pytest

import ratelimit
from ratelimit.guard import NullGuard
from syncops.cardtrader import NotConnected, client_for_seller, client_for_token, default_guard
from syncops.cardtrader.factory import token_key

from .conftest import RecordingGuard


@pytest.mark.django_db
def test_client_for_seller_uses_the_stored_token_and_settings(seller, settings):
    settings.CARDTRADER_API_BASE = "http://127.0.0.1:9/api/v2"
    settings.CARDTRADER_CONNECT_TIMEOUT = 1.5
    settings.CARDTRADER_WRITE_TIMEOUT = 7.0
    settings.CARDTRADER_EXPORT_TIMEOUT = 120.0
    sync = seller.sync_settings
    with pytest.raises(NotConnected):
        client_for_seller(sync)
    sync.set_credentials(token="tok-123", shared_secret="s")
    sync.save()
    sync.refresh_from_db()
    guard = RecordingGuard()
    client = client_for_seller(sync, guard=guard)
    assert client.seller_id == str(seller.pk)
    assert client.base_url == "http://127.0.0.1:9/api/v2"
    assert client.timeout == (1.5, 7.0) and client.export_timeout == (1.5, 120.0)
    assert client._session.headers["Authorization"] == "Bearer tok-123"
    assert client.guard is guard
    assert "tok-123" not in repr(client)


def test_client_for_token_keys_the_limiter_by_a_hash_of_the_token():
    client = client_for_token(" tok-abc ", guard=RecordingGuard())
    assert client.seller_id == token_key("tok-abc") and "tok-abc" not in client.seller_id
    assert client_for_token("tok-abd", guard=RecordingGuard()).seller_id != client.seller_id
    with pytest.raises(NotConnected):
        client_for_token("  ")


def test_default_guard_is_the_limiters_when_it_exists(monkeypatch):
    sentinel = RecordingGuard()
    monkeypatch.setattr(ratelimit, "get_default_guard", lambda: sentinel, raising=False)
    assert default_guard() is sentinel
    assert client_for_token("t").guard is sentinel
    monkeypatch.delattr(ratelimit, "get_default_guard")
    assert isinstance(default_guard(), NullGuard)


def test_the_token_never_reaches_logs_or_errors(sandbox_settings, cardtrader_sandbox, caplog, sandbox_account):
    caplog.set_level(logging.DEBUG)  # urllib3's connection logs included
    secret = sandbox_account.token
    with client_for_token(secret, guard=RecordingGuard()) as c:
        c.info()
        try:
            c.delete_product(1)
        except Exception as exc:  # NotFound
            assert secret not in str(exc) and secret not in repr(exc)
    with client_for_token(secret + "x", guard=RecordingGuard()) as bad:
        with pytest.raises(Exception) as err:
            bad.info()
        assert secret not in str(err.value)
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "/info" in text  # the calls were logged...
    assert secret not in text and "Bearer" not in text  # ...without the credentials
