"""Shared steps of the push end-to-end tests: connect sellers, import, compare, wait."""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from inventory.models import ConnectionState, InventoryItem, SyncSettings, User
from inventory.properties import editable_view
from syncops.models import OperationState, SyncOperation

SETTLED = (OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED)


def connect_seller(control, *, products: int = 0, seed: int = 0, name: str = "Shop"):
    """A sandbox account, a connected local seller for it, and its products imported locally."""
    account = control.create_account(name=name)
    if products:
        control.seed_products(account.user_id, products, seed=seed)
    user = User.objects.create(username=f"seller-{account.user_id}")
    sync = SyncSettings(user=user, connection_state=ConnectionState.CONNECTED, cardtrader_user_id=account.user_id)
    sync.set_credentials(token=account.token, shared_secret=account.shared_secret)
    sync.save()
    InventoryItem.objects.bulk_create([
        InventoryItem(
            seller=user, product_id=row["id"], blueprint_id=row["blueprint_id"], game_id=row["game_id"],
            category_id=row["category_id"], quantity=row["quantity"], price_cents=row["price_cents"],
            currency=row["price_currency"], properties=row["properties_hash"], description=row["description"] or "",
            user_data_field=row["user_data_field"] or "", graded=bool(row["graded"]), name=row["name_en"],
        )
        for row in control.products(account.user_id)
    ])
    return account, user


def wait_settled(sellers: list[User], *, timeout: float = 60.0, settle: Any = None) -> None:
    """Until no push operation of these sellers is pending, running or uncertain; ``settle`` is
    called every 2 s (the sweeper's job, sped up)."""
    deadline = time.monotonic() + timeout
    next_settle = time.monotonic() + 2.0
    while True:
        open_ops = SyncOperation.objects.filter(seller__in=sellers).exclude(state__in=SETTLED)
        if not open_ops.exists():
            return
        if settle is not None and time.monotonic() >= next_settle:
            settle()  # what beat's sweeper does every 30 s, sooner
            next_settle = time.monotonic() + 2.0
        if time.monotonic() > deadline:
            states = defaultdict(int)
            for state in open_ops.values_list("state", flat=True):
                states[state] += 1
            sample = list(open_ops.values("id", "kind", "state", "attempts", "last_error", "next_attempt_at")[:5])
            raise AssertionError(f"operations still open after {timeout}s: {dict(states)} e.g. {sample}")
        time.sleep(0.3)


def mismatches(control, account, user) -> list[str]:
    """Field-by-field differences between the sandbox's products and the local rows.
    Quantity 0 locally equals quantity 0 or no product on CardTrader."""
    remote = {row["id"]: row for row in control.products(account.user_id)}
    local = {i.product_id: i for i in InventoryItem.objects.filter(seller=user)}
    out: list[str] = []
    for pid, item in local.items():
        row = remote.get(pid)
        if row is None:
            if item.quantity != 0:
                out.append(f"{pid}: local quantity {item.quantity}, missing on CardTrader")
            continue
        for name in ("quantity", "price_cents", "description", "user_data_field", "graded"):
            lv, rv = getattr(item, name), row[name]
            if name in ("description", "user_data_field"):
                rv = rv or ""
            if lv != rv:
                out.append(f"{pid}: {name} local={lv!r} remote={rv!r}")
        props = editable_view(item.properties, game_id=item.game_id)
        for key, value in props.items():
            if row["properties_hash"].get(key) != value:
                out.append(f"{pid}: properties.{key} local={value!r} remote={row['properties_hash'].get(key)!r}")
    for pid, row in remote.items():
        if pid not in local:
            out.append(f"{pid}: on CardTrader (quantity {row['quantity']}) but deleted locally")
    return out


def history(control, account, product_id: int) -> str:
    """What happened to one product, for an assertion message: local row, CardTrader's row, the
    operations, and the requests that named it (increments; bulk calls carry ids in the body)."""
    item = InventoryItem.objects.filter(product_id=product_id).values("quantity", "sync_state", "version").first()
    remote = next((r for r in control.products(account.user_id) if r["id"] == product_id), None)
    ops = list(SyncOperation.objects.filter(product_id=product_id).order_by("id").values_list(
        "id", "kind", "state", "payload", "result", "attempts", "error_code", "last_error"))
    calls = [(round(e["time"], 2), e["method"], e["status"]) for e in control.request_log(account.user_id)
             if str(product_id) in e["path"]]
    return (f"product {product_id}: local {item}, remote quantity {remote and remote['quantity']}; "
            f"operations {ops}; requests {calls}")
