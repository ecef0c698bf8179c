"""Helpers for the sandbox's own tests: a `requests` session authenticated as a fresh account,
and a guard that puts the sandbox's global switches back after a test changes them."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests


class Api:
    """A keep-alive HTTP client for one token; paths are relative to /api/v2."""

    def __init__(self, api_base: str, token: str) -> None:
        self.base = api_base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        return self.session.request(method, self.base + path, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self("POST", path, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return self("PUT", path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self("DELETE", path, **kw)


@pytest.fixture
def control(cardtrader_sandbox):
    return cardtrader_sandbox.control


@pytest.fixture
def api(cardtrader_sandbox, sandbox_account) -> Iterator[Api]:
    client = Api(cardtrader_sandbox.api_base, sandbox_account.token)
    yield client
    client.session.close()


@pytest.fixture
def make_api(cardtrader_sandbox):
    made: list[Api] = []

    def make(token: str) -> Api:
        made.append(Api(cardtrader_sandbox.api_base, token))
        return made[-1]

    yield make
    for client in made:
        client.session.close()


@pytest.fixture
def restore_config(control) -> Iterator[None]:
    """The sandbox is shared by the whole session: put every global setting back afterwards."""
    before = control.config()
    yield
    control.set_config(**before)
    control.clear_faults()
