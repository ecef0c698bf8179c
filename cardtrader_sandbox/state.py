"""The sandbox's in-memory world: accounts (one token = one app = one seller), their products,
jobs and orders, the switchable configuration and faults, and the request log.

Everything lives behind one lock (``World.lock``): the server is one process, requests are short,
and one lock makes every multi-step change (a sale decrementing several products, a bulk job
applying) atomic, which is what CardTrader's database gives its clients.
"""
from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONFIG: dict[str, Any] = {
    "job_pending_seconds": 1.0,
    "job_running_seconds": 1.0,
    "import_seconds": 1.0,  # how long a CSV import runs
    "rate_limit_algorithm": "sliding",  # or "fixed"
    "count_rejected": False,  # do 429'd calls count toward the window
    "retry_after_header": False,
    "bulk_max_items": None,  # None = unlimited (CardTrader's real limit is undocumented)
    "games_shape": "array",  # or "bare"
    "global_limit": 200,
    "global_window_seconds": 10.0,
    "webhook_max_attempts": 4,
    "webhook_backoff_seconds": 0.2,
    "webhook_timeout_seconds": 5.0,
}

FAULT_DEFAULTS: dict[str, Any] = {
    "error_5xx_rate": 0.0,
    "error_5xx_status": 500,
    "timeout_rate": 0.0,
    "timeout_seconds": 35.0,
    "html_error_rate": 0.0,
    "rate_limit_burst": 0,
    "export_latency_per_1000": 0.0,
    "job_unprocessable_rate": 0.0,
    "webhook_duplicate_rate": 0.0,
    "webhook_reorder": False,
    "webhook_delay_ms": 0,
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(app_id: int) -> str:
    """A JWT-shaped token like CardTrader's (RS256, iss cardtrader-production, sub app:<id>).

    The signature is random bytes: the sandbox only looks tokens up, it never verifies them.
    """
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = {"iss": "cardtrader-production", "sub": f"app:{app_id}", "iat": int(time.time()),
              "jti": secrets.token_hex(8)}
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(secrets.token_bytes(64))}"


class Product:
    """One product row. ``properties`` holds only the blueprint's editable properties; the dict is
    always replaced, never mutated in place, because seeded products share them (and the export's
    render cache compares it by identity)."""

    __slots__ = ("blueprint_id", "bundle_size", "description", "graded", "id", "price_cents", "properties",
                 "quantity", "rendered", "tag", "user_data_field")

    def __init__(self, id: int, blueprint_id: int, quantity: int, price_cents: int, properties: dict,
                 description: str = "", user_data_field: str = "", graded: bool = False, tag: str = "",
                 bundle_size: int = 1) -> None:
        self.id = id
        self.blueprint_id = blueprint_id
        self.quantity = quantity
        self.price_cents = price_cents
        self.properties = properties
        self.description = description
        self.user_data_field = user_data_field
        self.graded = graded
        self.tag = tag
        self.bundle_size = bundle_size
        self.rendered: tuple | None = None  # the export row's JSON and what it was made from (inventory.py)

    def merge_key(self) -> tuple:
        return (self.blueprint_id, tuple(sorted(self.properties.items())), self.price_cents)


@dataclass
class Job:
    uuid: str
    kind: str  # create | update | destroy
    items: list
    created: float
    pending_seconds: float
    running_seconds: float
    unprocessable: bool = False
    results: list | None = None  # set when applied

    def state(self, now: float) -> str:
        if now < self.created + self.pending_seconds:
            return "pending"
        if now < self.created + self.pending_seconds + self.running_seconds:
            return "running"
        return "unprocessable" if self.unprocessable else "completed"


@dataclass
class Account:
    user_id: int
    app_id: int
    name: str
    currency: str
    token: str
    shared_secret: str
    webhook_url: str | None = None
    products: dict[int, Product] = field(default_factory=dict)
    merge_index: dict[tuple, int] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    open_jobs: list[Job] = field(default_factory=list)  # not yet applied
    orders: dict[int, dict] = field(default_factory=dict)  # internal order records (see orders.py)
    imports: dict[int, dict] = field(default_factory=dict)  # CSV imports (see imports.py)

    def public(self) -> dict:
        return {"user_id": self.user_id, "app_id": self.app_id, "name": self.name, "currency": self.currency,
                "token": self.token, "shared_secret": self.shared_secret, "webhook_url": self.webhook_url}

    def add(self, product: Product) -> None:
        self.products[product.id] = product
        self.merge_index.setdefault(product.merge_key(), product.id)

    def remove(self, product: Product) -> None:
        self.products.pop(product.id, None)
        key = product.merge_key()
        if self.merge_index.get(key) == product.id:
            del self.merge_index[key]

    def rekey(self, product: Product, old_key: tuple) -> None:
        """Keep the merge index right after a product's blueprint/properties/price changed."""
        if self.merge_index.get(old_key) == product.id:
            del self.merge_index[old_key]
        self.merge_index.setdefault(product.merge_key(), product.id)

    def find_identical(self, key: tuple) -> Product | None:
        pid = self.merge_index.get(key)
        return self.products.get(pid) if pid is not None else None


class World:
    """All mutable sandbox state. Hold ``lock`` for any read-modify-write."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.accounts: dict[int, Account] = {}
            self.by_token: dict[str, Account] = {}
            self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
            self.global_faults: dict[str, Any] = {}
            self.user_faults: dict[int, dict[str, Any]] = {}
            self.bursts: dict[int | None, int] = {}
            # (user_id, method, path, query, status, time) tuples: compact at millions of entries
            self.request_log: deque[tuple] = deque(maxlen=1_000_000)
            self.webhook_log: list[dict] = []
            self.user_ids = itertools.count(1001)
            self.app_ids = itertools.count(3001)
            self.product_ids = itertools.count(108_455_069)
            self.order_ids = itertools.count(733_733)
            self.order_item_ids = itertools.count(1_733_001)
            self.fault_release = threading.Event()  # set to free requests hanging on a timeout fault
            self.fault_release.clear()

    def create_account(self, name: str = "Shop", currency: str = "EUR", webhook_url: str | None = None) -> Account:
        with self.lock:
            app_id = next(self.app_ids)
            acct = Account(user_id=next(self.user_ids), app_id=app_id, name=name, currency=currency,
                           token=make_token(app_id), shared_secret=secrets.token_hex(16), webhook_url=webhook_url)
            self.accounts[acct.user_id] = acct
            self.by_token[acct.token] = acct
            return acct

    def fault(self, name: str, user_id: int | None) -> Any:
        """A fault's value for this account: the account's own setting wins over the global one."""
        if user_id is not None:
            scoped = self.user_faults.get(user_id)
            if scoped and name in scoped:
                return scoped[name]
        return self.global_faults.get(name, FAULT_DEFAULTS[name])

    def set_faults(self, faults: dict[str, Any], user_id: int | None) -> None:
        unknown = set(faults) - set(FAULT_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        with self.lock:
            target = self.global_faults if user_id is None else self.user_faults.setdefault(user_id, {})
            for name, value in faults.items():
                if name == "rate_limit_burst":
                    self.bursts[user_id] = int(value)
                else:
                    target[name] = value
            self.fault_release.clear()

    def clear_faults(self, user_id: int | None) -> None:
        with self.lock:
            if user_id is None:
                self.global_faults.clear()
                self.user_faults.clear()
                self.bursts.clear()
                # free anything hanging on a timeout fault, then re-arm for the next one
                old, self.fault_release = self.fault_release, threading.Event()
                old.set()
            else:
                self.user_faults.pop(user_id, None)
                self.bursts.pop(user_id, None)

    def take_burst(self, user_id: int | None) -> bool:
        """Consume one of the 'next N requests answer 429' (the account's own burst first)."""
        with self.lock:
            scopes = (user_id, None) if user_id is not None else (None,)
            for scope in scopes:
                left = self.bursts.get(scope, 0)
                if left > 0:
                    self.bursts[scope] = left - 1
                    return True
            return False

    def set_config(self, cfg: dict[str, Any]) -> None:
        unknown = set(cfg) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(sorted(unknown))}")
        if cfg.get("rate_limit_algorithm", "sliding") not in ("sliding", "fixed"):
            raise ValueError("rate_limit_algorithm must be 'sliding' or 'fixed'")
        if cfg.get("games_shape", "array") not in ("array", "bare"):
            raise ValueError("games_shape must be 'array' or 'bare'")
        with self.lock:
            self.config.update(cfg)
