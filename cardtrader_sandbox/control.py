"""``SandboxControl``: the Python side of the control API, for tests, benchmarks and the demo."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


class SandboxControlError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox control call failed ({status}): {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Account:
    user_id: int
    app_id: int
    name: str
    currency: str
    token: str
    shared_secret: str
    webhook_url: str | None = None


class SandboxControl:
    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> Any:
        resp = self._session.request(method, f"{self.base_url}/_sandbox{path}", json=json, params=params,
                                     timeout=self.timeout)
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        if resp.status_code != 200:
            raise SandboxControlError(resp.status_code, body)
        return body

    # accounts
    def health(self) -> dict:
        return self._call("GET", "/health")

    def create_account(self, *, name: str = "Shop", currency: str = "EUR", webhook_url: str | None = None) -> Account:
        return Account(**self._call("POST", "/accounts", json={"name": name, "currency": currency,
                                                                "webhook_url": webhook_url}))

    def set_webhook_url(self, user_id: int, url: str | None) -> None:
        self._call("PUT", f"/accounts/{user_id}/webhook_url", json={"url": url})

    # products ("on CardTrader's website": never fire webhooks)
    def seed_products(self, user_id: int, count: int, *, seed: int = 0, game: str = "mtg") -> int:
        return self._call("POST", f"/accounts/{user_id}/seed", json={"count": count, "seed": seed, "game": game})[
            "created"]

    def products(self, user_id: int) -> list[dict]:
        return self._call("GET", f"/accounts/{user_id}/products")

    def add_product(self, user_id: int, **fields: Any) -> dict:
        return self._call("POST", f"/accounts/{user_id}/products", json=fields)

    def update_product(self, user_id: int, product_id: int, **fields: Any) -> dict:
        return self._call("PUT", f"/accounts/{user_id}/products/{product_id}", json=fields)

    def delete_product(self, user_id: int, product_id: int) -> dict:
        return self._call("DELETE", f"/accounts/{user_id}/products/{product_id}")

    # marketplace activity (fires signed webhooks)
    def sell(self, user_id: int, items: list[dict], *, via_cardtrader_zero: bool = False,
             presale: bool = False) -> dict:
        return self._call("POST", f"/accounts/{user_id}/sell", json={
            "items": items, "via_cardtrader_zero": via_cardtrader_zero, "presale": presale})

    def transition_order(self, user_id: int, order_id: int, state: str) -> dict:
        return self._call("POST", f"/accounts/{user_id}/orders/{order_id}/transition", json={"state": state})

    def destroy_order(self, user_id: int, order_id: int) -> dict:
        return self._call("DELETE", f"/accounts/{user_id}/orders/{order_id}")

    def merge_ct0(self, user_id: int) -> dict:
        return self._call("POST", f"/accounts/{user_id}/merge_ct0")

    def orders(self, user_id: int) -> list[dict]:
        return self._call("GET", f"/accounts/{user_id}/orders")

    # switches
    def set_faults(self, **faults: Any) -> None:
        self._call("POST", "/faults", json=faults)

    def clear_faults(self, user_id: int | None = None) -> None:
        self._call("DELETE", "/faults", params={"user_id": user_id} if user_id is not None else None)

    def set_config(self, **cfg: Any) -> dict:
        return self._call("POST", "/config", json=cfg)

    def config(self) -> dict:
        return self._call("GET", "/config")

    # observation
    def request_log(self, user_id: int | None = None, *, since: float | None = None) -> list[dict]:
        params: dict[str, Any] = {}
        if user_id is not None:
            params["user_id"] = user_id
        if since is not None:
            params["since"] = repr(float(since))
        return self._call("GET", "/request_log", params=params)

    def webhook_log(self, user_id: int | None = None) -> list[dict]:
        return self._call("GET", "/webhook_log", params={"user_id": user_id} if user_id is not None else None)

    def reset(self) -> None:
        self._call("POST", "/reset")
