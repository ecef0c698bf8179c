"""CSV import (``POST /product_imports``): asynchronous, one at a time per game, add to or replace
the game's stock when it ends.

Rows are identified by ``blueprint_id`` (CardTrader also matches names, collector numbers and
external ids; the sandbox's catalogue is too small for that, so other rows are skipped with a
reason). Callers hold ``World.lock``.
"""
from __future__ import annotations

import csv
import io
import itertools
import time
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from . import inventory
from .catalogue import catalogue
from .inventory import ItemError
from .orders import iso
from .state import Account, World

BUSY = {"errors": [{"scheduler": "Another synchronization is in progress. Please retry later."}]}
_ids = itertools.count(54_345)

# CSV column → editable property, by the suffix CardTrader's names use per game
_PROPERTY_COLUMNS = {"condition": ("condition",), "language": ("_language",), "foil": ("_foil",),
                     "signed": ("signed",), "altered": ("altered",), "first_edition": ("first_edition",)}


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """form field name → (filename, bytes)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _property_for(bp: Any, column: str) -> str | None:
    for suffix in _PROPERTY_COLUMNS.get(column, ()):
        for name in bp.editable:
            if name == suffix or (suffix.startswith("_") and name.endswith(suffix)):
                return name
    return None


def _item(row: dict[str, str]) -> dict:
    bp_raw = (row.get("blueprint_id") or "").strip()
    if not bp_raw.isdigit() or int(bp_raw) not in catalogue().blueprints:
        raise ItemError({"blueprint_id": ["row cannot be identified (the sandbox matches blueprint_id only)"]})
    bp = catalogue().blueprints[int(bp_raw)]
    item: dict[str, Any] = {"blueprint_id": bp.id, "quantity": (row.get("quantity") or "1").strip()}
    if row.get("price_cents"):
        item["price_cents"] = row["price_cents"].strip()
    else:
        item["price"] = (row.get("price") or "").strip() or None
    props: dict[str, Any] = {}
    for column in _PROPERTY_COLUMNS:
        value = (row.get(column) or "").strip()
        name = _property_for(bp, column)
        if value and name:
            is_bool = bp.editable[name].type == "boolean"
            props[name] = value.lower() in ("true", "1", "yes", "foil") if is_bool else value
    item["properties"] = props
    for name in ("description", "user_data_field"):
        if row.get(name):
            item[name] = row[name]
    try:
        item["quantity"] = int(item["quantity"])
        if "price_cents" in item:
            item["price_cents"] = int(item["price_cents"])
    except ValueError:
        raise ItemError({"quantity": ["is not an integer"]})
    return item


def start(world: World, acct: Account, content_type: str, body: bytes) -> tuple[int, dict]:
    fields = parse_multipart(content_type, body)
    missing = [name for name in ("csv", "game_id") if name not in fields]
    if missing:
        raise ItemError({name: ["can't be blank"] for name in missing}, code="missing_parameter")
    filename, raw = fields["csv"]
    try:
        game_id = int(fields["game_id"][1])
    except ValueError:
        raise ItemError({"game_id": ["is not an integer"]})
    mode = fields.get("replace_stock_or_add_to_stock", (None, b"add_to_stock"))[1].decode().strip()
    if mode not in ("replace_stock", "add_to_stock"):
        raise ItemError({"replace_stock_or_add_to_stock": ["must be replace_stock or add_to_stock"]})
    advance(world, acct)
    if any(imp["game_id"] == game_id and imp["sync_ended_at"] is None for imp in _imports(acct).values()):
        return 422, BUSY
    text = raw.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    rows = [r for r in reader if any(cell.strip() for cell in r)]
    if "column_names" in fields:
        columns = fields["column_names"][1].decode().strip().split("|")
    else:
        columns, rows = (rows[0], rows[1:]) if rows else ([], [])
    record = {
        "id": next(_ids), "game_id": game_id, "mode": mode,
        "error_mode": fields.get("error_mode", (None, b""))[1].decode().strip(),
        "rows": [dict(zip(columns, r, strict=False)) for r in rows], "raw_rows": rows, "columns": columns,
        "csv_filename": filename or "import.csv", "csv_size": len(raw),
        "sync_started_at": time.time(), "due": time.monotonic() + float(world.config["import_seconds"]),
        "sync_ended_at": None, "error": None, "skipped": [],
        "counts": {"count": len(rows), "imported_count": 0, "skipped_count": 0, "create_count": 0,
                   "update_count": 0, "delete_count": 0},
    }
    _imports(acct)[record["id"]] = record
    return 200, {"id": record["id"], "csv_filename": record["csv_filename"], "csv_size": record["csv_size"]}


def _imports(acct: Account) -> dict[int, dict]:
    return acct.imports


def advance(world: World, acct: Account) -> None:
    """Finish every import whose time is up: its effects appear when it reports ended."""
    now = time.monotonic()
    for record in _imports(acct).values():
        if record["sync_ended_at"] is None and now >= record["due"]:
            _apply(world, acct, record)


def _apply(world: World, acct: Account, record: dict) -> None:
    counts = record["counts"]
    blueprints = catalogue().blueprints
    if record["mode"] == "replace_stock":
        for product in [p for p in acct.products.values() if blueprints[p.blueprint_id].game_id == record["game_id"]]:
            acct.remove(product)
            counts["delete_count"] += 1
    for raw, row in zip(record["raw_rows"], record["rows"], strict=True):
        try:
            item = _item(row)
            if blueprints[item["blueprint_id"]].game_id != record["game_id"]:
                raise ItemError({"game_id": ["row belongs to another game"]})
            if record["error_mode"] == "strict":
                item["error_mode"] = "strict"
            before = len(acct.products)
            inventory.create(world, acct, item)
        except ItemError as err:
            counts["skipped_count"] += 1
            record["skipped"].append((raw, "; ".join(f"{k}: {v}" for k, v in err.errors.items())))
            continue
        counts["imported_count"] += 1
        counts["create_count" if len(acct.products) > before else "update_count"] += 1
    record["sync_ended_at"] = time.time()


def body(record: dict) -> dict:
    return {"id": record["id"], **record["counts"], "error": record["error"],
            "sync_started_at": iso(record["sync_started_at"]), "sync_ended_at": iso(record["sync_ended_at"]),
            "csv_filename": record["csv_filename"], "csv_size": record["csv_size"]}


def skipped_csv(record: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*record["columns"], "error"])
    for raw, reason in record["skipped"]:
        writer.writerow([*raw, reason])
    return out.getvalue()
