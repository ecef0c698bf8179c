"""Transport failures the sandbox cannot produce on demand: a body cut mid-stream, a refused
connection, a redirect. A tiny real HTTP server (a raw socket, no mocks) plays the broken peer."""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from ratelimit.guard import Outcome
from syncops.cardtrader import CardTraderClient, ConnectionError, RateLimited, UnexpectedResponse

from .conftest import RecordingGuard


class OneShotServer:
    """Answers every connection with fixed raw bytes, then closes."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.requests.append(self._read_request(conn))
                conn.sendall(self.payload)

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[OneShotServer] = []

    def start(payload: bytes) -> OneShotServer:
        servers.append(OneShotServer(payload))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _client(port: int, guard: RecordingGuard) -> CardTraderClient:
    return CardTraderClient(token="secret-token-xyz", seller_id="s1", base_url=f"http://127.0.0.1:{port}/api/v2",
                            guard=guard, timeout=(1.0, 2.0), export_timeout=(1.0, 2.0))


def _rows(n: int) -> bytes:
    return json.dumps([{"id": i, "blueprint_id": 1, "quantity": 1, "price_cents": 10, "price_currency": "EUR",
                        "properties_hash": {}} for i in range(1, n + 1)]).encode()


def test_export_cut_mid_stream_raises_after_the_rows_it_had(serve):
    body = _rows(5000)  # ~570 KB: several 64 KiB reads succeed before the cut
    cut = body[: len(body) // 2]
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + cut)
    guard = RecordingGuard()
    got = []
    with pytest.raises((ConnectionError, UnexpectedResponse)) as err:
        for p in _client(server.port, guard).export_products():
            got.append(p.id)
    assert 0 < len(got) < 5000
    assert guard.outcomes == [err.value.outcome]
    assert err.value.outcome in (Outcome.TIMEOUT, Outcome.SERVER_ERROR)


def test_export_with_truncated_json_and_no_length_is_unexpected(serve):
    body = _rows(50)[:-30]
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + body)
    with pytest.raises(UnexpectedResponse, match="truncated"):
        list(_client(server.port, RecordingGuard()).export_products())


def test_export_in_the_array_wrapper_is_accepted_and_other_objects_are_not(serve):
    body = b'{"array": ' + _rows(3) + b"}"
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert [p.id for p in _client(server.port, RecordingGuard()).export_products()] == [1, 2, 3]
    body = b'{"error": "nope"}'
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    with pytest.raises(UnexpectedResponse, match="array"):
        list(_client(server.port, RecordingGuard()).export_products())


def test_html_200_page_on_a_write_is_unexpected_and_outcome_unknown(serve):
    page = b"<!DOCTYPE html><html><head><title>Oops</title></head><body><p>Maintenance &amp; more</p>" + b"x" * 5000
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(page) + page)
    guard = RecordingGuard()
    with pytest.raises(UnexpectedResponse) as err:
        _client(server.port, guard).update_product(5, {"quantity": 1})
    assert err.value.outcome_unknown
    assert str(err.value).endswith("HTML page: Maintenance & more")
    assert guard.outcomes == [Outcome.SERVER_ERROR]


def test_redirect_is_not_followed(serve):
    server = serve(b"HTTP/1.1 302 Found\r\nLocation: http://example.invalid/\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(UnexpectedResponse, match="undocumented status"):
        _client(server.port, RecordingGuard()).info()
    assert len(server.requests) == 1


def test_connection_refused_means_not_sent():
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    guard = RecordingGuard()
    with pytest.raises(ConnectionError) as err:
        _client(port, guard).create_product({"blueprint_id": 1, "price_cents": 1, "quantity": 1})
    assert not err.value.request_sent and not err.value.outcome_unknown
    assert guard.outcomes == [Outcome.TIMEOUT]


def test_connection_dropped_after_a_write_was_sent_is_unknown(serve):
    server = serve(b"")  # accepts, reads the request, closes without answering
    guard = RecordingGuard()
    with pytest.raises(ConnectionError) as err:
        _client(server.port, guard).create_product({"blueprint_id": 1, "price_cents": 1, "quantity": 1})
    assert err.value.request_sent and err.value.outcome_unknown
    assert b"Bearer secret-token-xyz" in server.requests[0]  # the token did go out, on the header only
    assert b'"price": 0.01' in server.requests[0]


def test_a_2xx_with_the_wrong_json_shape_is_unexpected(serve):
    body = b'[{"id": 1}]'  # /info answering a list
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                   + body)
    guard = RecordingGuard()
    with pytest.raises(UnexpectedResponse, match="shape") as err:
        _client(server.port, guard).info()
    assert err.value.status == 200 and not err.value.outcome_unknown
    assert guard.outcomes == [Outcome.SERVER_ERROR]


def test_retry_after_as_an_http_date(serve):
    import time
    from email.utils import formatdate

    body = b'{"error": "Too many requests: max 1 request per second"}'
    when = formatdate(time.time() + 30, usegmt=True)
    server = serve(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %s\r\nContent-Length: %d\r\n\r\n"
                   % (when.encode(), len(body)) + body)
    with pytest.raises(RateLimited) as err:
        _client(server.port, RecordingGuard()).get_job("abc")
    assert 25 < err.value.retry_after <= 31 and err.value.scope == "per_second"
