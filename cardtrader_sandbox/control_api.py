"""The control API under /_sandbox: what tests, benchmarks and the demo use to set the world up
and watch it. No token, no rate limit, no faults, not in the request log.

Marketplace activity started here (sell, transition, merge, destroy) fires signed webhooks;
"website" product edits (add/update/delete product) never do, as on CardTrader.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from . import inventory, orders
from .inventory import ItemError
from .replies import Reply
from .state import Account

if TYPE_CHECKING:
    from .server import Sandbox


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ControlAPI:
    def __init__(self, app: Sandbox) -> None:
        self.app = app
        R = re.compile
        self.routes = [
            ("GET", R(r"/health"), self.health),
            ("POST", R(r"/reset"), self.reset),
            ("POST", R(r"/accounts"), self.create_account),
            ("GET", R(r"/accounts/(\d+)"), self.account),
            ("PUT", R(r"/accounts/(\d+)/webhook_url"), self.webhook_url),
            ("POST", R(r"/accounts/(\d+)/seed"), self.seed),
            ("GET", R(r"/accounts/(\d+)/products"), self.products),
            ("POST", R(r"/accounts/(\d+)/products"), self.add_product),
            ("PUT", R(r"/accounts/(\d+)/products/(\d+)"), self.update_product),
            ("DELETE", R(r"/accounts/(\d+)/products/(\d+)"), self.delete_product),
            ("GET", R(r"/accounts/(\d+)/orders"), self.list_orders),
            ("POST", R(r"/accounts/(\d+)/sell"), self.sell),
            ("POST", R(r"/accounts/(\d+)/orders/(\d+)/transition"), self.transition),
            ("DELETE", R(r"/accounts/(\d+)/orders/(\d+)"), self.destroy_order),
            ("POST", R(r"/accounts/(\d+)/merge_ct0"), self.merge_ct0),
            ("POST", R(r"/faults"), self.set_faults),
            ("DELETE", R(r"/faults"), self.clear_faults),
            ("GET", R(r"/config"), self.get_config),
            ("POST", R(r"/config"), self.set_config),
            ("GET", R(r"/request_log"), self.request_log),
            ("GET", R(r"/webhook_log"), self.webhook_log),
        ]

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes) -> Reply:
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return Reply(400, {"error": "body is not valid JSON"})
        for m, pattern, handler in self.routes:
            found = pattern.fullmatch(path.rstrip("/"))
            if m == method and found:
                try:
                    result = handler(query, body, *found.groups())
                    return result if isinstance(result, Reply) else Reply(200, result)
                except ControlError as err:
                    return Reply(err.status, {"error": err.message})
                except ItemError as err:
                    return Reply(err.status, {"error": "invalid", "errors": err.errors})
                except (ValueError, TypeError) as err:
                    return Reply(422, {"error": str(err)})
        return Reply(404, {"error": f"no control route {method} {path}"})

    # helpers
    def _acct(self, user_id: str) -> Account:
        acct = self.app.world.accounts.get(int(user_id))
        if acct is None:
            raise ControlError(404, f"no account {user_id}")
        return acct

    def _webhook(self, acct: Account, cause: str, order: dict) -> None:
        data = {} if cause == "order.destroy" else orders.seller_view(acct, order)
        self.app.webhooks.enqueue(acct, cause, order["id"], data)

    # routes
    def health(self, q: dict, body: Any) -> dict:
        return {"ok": True, "accounts": len(self.app.world.accounts)}

    def reset(self, q: dict, body: Any) -> dict:
        self.app.reset()
        return {"ok": True}

    def create_account(self, q: dict, body: Any) -> dict:
        acct = self.app.world.create_account(name=body.get("name", "Shop"), currency=body.get("currency", "EUR"),
                                             webhook_url=body.get("webhook_url"))
        return acct.public()

    def account(self, q: dict, body: Any, uid: str) -> dict:
        return self._acct(uid).public()

    def webhook_url(self, q: dict, body: Any, uid: str) -> dict:
        acct = self._acct(uid)
        acct.webhook_url = body.get("url")
        return acct.public()

    def seed(self, q: dict, body: Any, uid: str) -> dict:
        world = self.app.world
        with world.lock:
            acct = self._acct(uid)
            created = inventory.seed(world, acct, int(body.get("count", 0)), seed_value=int(body.get("seed", 0)),
                                     game=body.get("game", "mtg"))
        return {"created": created}

    def products(self, q: dict, body: Any, uid: str) -> Reply:
        world = self.app.world
        with world.lock:
            acct = self._acct(uid)
            inventory.advance_jobs(world, acct)
            return Reply(200, stream=self.app.export_chunks(acct, list(acct.products.values()), 0.0))

    def add_product(self, q: dict, body: Any, uid: str) -> dict:
        world = self.app.world
        with world.lock:
            acct = self._acct(uid)
            product, _ = inventory.create(world, acct, body, merge=bool(body.get("merge", False)))
            return inventory.export_row(acct, product)

    def update_product(self, q: dict, body: Any, uid: str, pid: str) -> dict:
        world = self.app.world
        with world.lock:
            acct = self._acct(uid)
            product, _ = inventory.update(acct, pid, body)
            return inventory.export_row(acct, product)

    def delete_product(self, q: dict, body: Any, uid: str, pid: str) -> dict:
        world = self.app.world
        with world.lock:
            acct = self._acct(uid)
            return inventory.export_row(acct, inventory.destroy(acct, pid))

    def list_orders(self, q: dict, body: Any, uid: str) -> list:
        with self.app.world.lock:
            acct = self._acct(uid)
            return [orders.seller_view(acct, o) for o in acct.orders.values()]

    def sell(self, q: dict, body: Any, uid: str) -> dict:
        world = self.app.world
        with world.lock:
            acct = self._acct(uid)
            inventory.advance_jobs(world, acct)
            order = orders.sell(world, acct, body.get("items"),
                                via_cardtrader_zero=bool(body.get("via_cardtrader_zero", False)),
                                presale=bool(body.get("presale", False)))
            self._webhook(acct, "order.create", order)
            return orders.seller_view(acct, order)

    def transition(self, q: dict, body: Any, uid: str, oid: str) -> dict:
        world = self.app.world
        with world.lock:
            acct = self._acct(uid)
            order = orders.get(acct, oid)
            orders.transition(world, acct, order, str(body.get("state")))
            self._webhook(acct, "order.update", order)
            return orders.seller_view(acct, order)

    def destroy_order(self, q: dict, body: Any, uid: str, oid: str) -> dict:
        world = self.app.world
        with world.lock:
            acct = self._acct(uid)
            order = orders.get(acct, oid)
            del acct.orders[order["id"]]
            self._webhook(acct, "order.destroy", order)
            return {"ok": True, "order_id": order["id"]}

    def merge_ct0(self, q: dict, body: Any, uid: str) -> dict:
        world = self.app.world
        with world.lock:
            acct = self._acct(uid)
            merged, closed = orders.merge_ct0(world, acct)
            if merged is None:
                return {"merged": None, "closed": []}
            self._webhook(acct, "order.create", merged)
            for original in closed:
                self._webhook(acct, "order.update", original)
            return {"merged": orders.seller_view(acct, merged), "closed": [o["id"] for o in closed]}

    def set_faults(self, q: dict, body: Any) -> dict:
        body = dict(body)
        uid = body.pop("user_id", None)
        self.app.world.set_faults(body, int(uid) if uid is not None else None)
        return {"ok": True}

    def clear_faults(self, q: dict, body: Any) -> dict:
        uid = q.get("user_id")
        self.app.world.clear_faults(int(uid) if uid else None)
        return {"ok": True}

    def get_config(self, q: dict, body: Any) -> dict:
        return dict(self.app.world.config)

    def set_config(self, q: dict, body: Any) -> dict:
        self.app.world.set_config(body)
        return dict(self.app.world.config)

    def request_log(self, q: dict, body: Any) -> list:
        uid = int(q["user_id"]) if q.get("user_id") else None
        since = float(q["since"]) if q.get("since") else None
        keys = ("user_id", "method", "path", "query", "status", "time")
        return [dict(zip(keys, e, strict=True)) for e in list(self.app.world.request_log)
                if (uid is None or e[0] == uid) and (since is None or e[5] >= since)]

    def webhook_log(self, q: dict, body: Any) -> list:
        uid = int(q["user_id"]) if q.get("user_id") else None
        return [e for e in list(self.app.world.webhook_log) if uid is None or e["user_id"] == uid]


def create_demo(app: Sandbox) -> None:
    """--demo: one account with a known inventory, printed so a person can try the API by hand."""
    world = app.world
    acct = world.create_account(name="Demo Shop")
    with world.lock:
        inventory.seed(world, acct, 100, seed_value=1)
    print(f"demo account user_id={acct.user_id}\n  token: {acct.token}\n  shared_secret: {acct.shared_secret}",
          flush=True)
