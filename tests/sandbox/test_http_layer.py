"""The HTTP layer itself: one keep-alive connection carries every kind of response in turn
(fixed-length JSON, errors, HTML, chunked streams), so Content-Length and framing are right."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest


def test_one_keep_alive_connection_serves_every_kind_of_response(cardtrader_sandbox, control, sandbox_account):
    control.seed_products(sandbox_account.user_id, 4_500, seed=9)
    url = urlsplit(cardtrader_sandbox.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    auth = {"Authorization": f"Bearer {sandbox_account.token}"}
    sock_ids = set()

    def call(method, path, body=None, headers=auth):
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        sock_ids.add(id(conn.sock))
        return resp, data

    resp, data = call("GET", "/api/v2/info")
    assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(data)
    resp, data = call("GET", "/api/v2/products/export")
    assert resp.getheader("Transfer-Encoding") == "chunked" and len(json.loads(data)) == 4_500
    resp, data = call("GET", "/api/v2/nope")
    assert resp.status == 404 and json.loads(data)["error_code"] == "not_found"
    resp, data = call("GET", "/api/v2/info", headers={})
    assert resp.status == 401
    resp, data = call("POST", "/api/v2/products", body=b'{"blueprint_id": 6, "price": 1, "quantity": 1}')
    assert resp.status == 200 and json.loads(data)["resource"]["price"]["cents"] == 100
    control.set_faults(html_error_rate=1.0, user_id=sandbox_account.user_id)
    resp, data = call("GET", "/api/v2/info")
    assert resp.status == 502 and data.startswith(b"<!DOCTYPE html>")
    control.clear_faults(sandbox_account.user_id)
    resp, data = call("GET", "/_sandbox/health", headers={})
    assert resp.status == 200
    assert len(sock_ids) == 1  # never reconnected
    conn.close()


def test_command_line_needs_a_port():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-m", "cardtrader_sandbox"], capture_output=True, text=True, timeout=30,
                            cwd=root)
    assert result.returncode == 2 and "--port" in result.stderr


@pytest.mark.parametrize("path", ["/_sandbox/nope", "/_sandbox/accounts/999999/products"])
def test_control_api_errors_are_clear(cardtrader_sandbox, path):
    import requests

    resp = requests.get(cardtrader_sandbox.base_url + path, timeout=5)
    assert resp.status_code == 404 and "error" in resp.json()
