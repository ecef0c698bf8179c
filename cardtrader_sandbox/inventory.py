"""Product writes with CardTrader's semantics, the two response shapes, bulk jobs and seeding.

Callers hold ``World.lock``. Every write function returns either ``(product, warnings)`` or raises
``ItemError`` carrying CardTrader-style field errors, so single calls and bulk job items share one
implementation and can't drift apart.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import Any

from .catalogue import Blueprint, catalogue, check_properties
from .state import Account, Job, Product, World


class ItemError(Exception):
    def __init__(self, errors: dict[str, list[str]], status: int = 422, code: str = "validation_error") -> None:
        super().__init__(errors)
        self.errors = errors
        self.status = status
        self.code = code


def _not_found(what: str) -> ItemError:
    return ItemError({"id": [f"{what} not found"]}, status=404, code="not_found")


def price_to_cents(value: Any) -> int:
    """``price`` arrives as a float in major units (62.58); store integer cents, rounded half up."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ItemError({"price": ["is not a number"]})
    try:
        cents = (Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ItemError({"price": ["is not a number"]})
    if not cents.is_finite() or cents <= 0:
        raise ItemError({"price": ["must be greater than 0"]})
    return int(cents)


def _int_field(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        else:
            raise ItemError({name: ["is not an integer"]})
    if value < minimum:
        raise ItemError({name: [f"must be greater than or equal to {minimum}"]})
    return value


def _blueprint(value: Any) -> Blueprint:
    if value in (None, ""):
        raise ItemError({"blueprint_id": ["Blueprint cant be blank"]})
    try:
        bp = catalogue().blueprints.get(int(value))
    except (TypeError, ValueError):
        bp = None
    if bp is None:
        raise ItemError({"blueprint_id": ["Blueprint not found"]})
    return bp


def _property_errors(errors: dict[str, list[str]]) -> dict:
    return errors if "properties" in errors else {"properties": errors}


def _warnings_body(prop_warnings: dict[str, list[str]]) -> dict:
    return {"properties": prop_warnings} if prop_warnings else {}


@cache
def _bp_static(blueprint_id: int) -> tuple:
    bp = catalogue().blueprints[blueprint_id]
    return bp, bp.fixed, catalogue().expansion_ref(bp.expansion_id)


def export_row(acct: Account, p: Product) -> dict:
    """The ``GET /products/export`` shape: price_cents/price_currency, properties_hash with the
    blueprint's fixed (read-only) properties merged in, graded as a boolean."""
    bp, fixed, expansion = _bp_static(p.blueprint_id)
    return {
        "id": p.id, "name_en": bp.name, "quantity": p.quantity, "bundle_size": p.bundle_size,
        "bundled_quantity": p.quantity * p.bundle_size, "description": p.description,
        "price_cents": p.price_cents, "price_currency": acct.currency, "game_id": bp.game_id,
        "category_id": bp.category_id, "blueprint_id": bp.id, "user_id": acct.user_id,
        "properties_hash": {**fixed, **p.properties}, "graded": p.graded, "tag": p.tag,
        "user_data_field": p.user_data_field, "uploaded_images": [], "expansion": expansion,
    }


# --- the export, rendered fast -----------------------------------------------------------------
#
# A 250,000-product export is ~120 MB of JSON. Building a dict per row and running json.dumps over
# it cost the sandbox ~3 s of CPU per export, on the same two cores as the client it serves, so a
# benchmark of the client measured the sandbox. Here a row is one %-format of a template with the
# blueprint's and the account's parts already encoded, the properties_hash text is shared by the
# products that share a properties dict (seeding shares them), and the rendered text of each
# product is kept with a stamp of everything it was rendered from: a product changed in any way
# (sale, edit, restore) no longer matches its stamp and is rendered again. No invalidation call
# sites to forget. The text is exactly ``json.dumps(export_row(...), separators=(",", ":"))``.

_dumps = json.JSONEncoder(separators=(",", ":")).encode
_str_json = json.encoder.encode_basestring_ascii  # what json.dumps uses for a str (ensure_ascii)


def _literal(value: Any) -> str:
    """A JSON literal safe inside a %-format template."""
    return _dumps(value).replace("%", "%%")


@cache
def _row_template(blueprint_id: int, currency: str, user_id: int) -> str:
    bp, _fixed, expansion = _bp_static(blueprint_id)
    return (
        '{"id":%d,"name_en":' + _literal(bp.name)
        + ',"quantity":%d,"bundle_size":%d,"bundled_quantity":%d,"description":%s,"price_cents":%d,'
        + '"price_currency":' + _literal(currency) + ',"game_id":' + _literal(bp.game_id)
        + ',"category_id":' + _literal(bp.category_id) + ',"blueprint_id":' + _literal(bp.id)
        + ',"user_id":' + _literal(user_id)
        + ',"properties_hash":%s,"graded":%s,"tag":%s,"user_data_field":%s,"uploaded_images":[],"expansion":'
        + _literal(expansion) + "}"
    )


# id(properties dict) -> (the dict, blueprint id, its properties_hash JSON). Holding the dict keeps
# its id from being reused while the entry lives. Bounded: cleared when it grows past the limit.
_props_json: dict[int, tuple[dict, int, str]] = {}
_PROPS_CACHE_MAX = 200_000


def _properties_json(blueprint_id: int, props: dict) -> str:
    entry = _props_json.get(id(props))
    if entry is not None and entry[0] is props and entry[1] == blueprint_id:
        return entry[2]
    text = _dumps({**_bp_static(blueprint_id)[1], **props})
    if len(_props_json) >= _PROPS_CACHE_MAX:
        _props_json.clear()
    _props_json[id(props)] = (props, blueprint_id, text)
    return text


def export_row_json(acct: Account, p: Product) -> str:
    """``export_row`` as compact JSON text, from the product's cache when nothing changed."""
    props = p.properties  # read once: the stamp, the text and the cache entry must agree
    stamp = (p.quantity, p.price_cents, p.bundle_size, p.description, p.tag, p.user_data_field, p.graded,
             p.blueprint_id, acct.currency, acct.user_id)
    cached = p.rendered
    if cached is not None and cached[1] is props and cached[0] == stamp:
        return cached[2]
    quantity, price, bundle, description, tag, udf, graded, bp_id, currency, user_id = stamp
    text = _row_template(bp_id, currency, user_id) % (
        p.id, quantity, bundle, quantity * bundle, _text(description), price, _properties_json(bp_id, props),
        "true" if graded else "false", _text(tag), _text(udf),
    )
    p.rendered = (stamp, props, text)
    return text


def _text(value: Any) -> str:
    return _str_json(value) if type(value) is str else _dumps(value)


def resource(acct: Account, p: Product) -> dict:
    """The write-response ``resource`` shape: price{cents,currency}, properties, graded as 0/1."""
    bp = catalogue().blueprints[p.blueprint_id]
    return {
        "id": p.id, "quantity": p.quantity, "bundle_size": p.bundle_size, "description": p.description or None,
        "graded": 1 if p.graded else 0, "game_id": bp.game_id, "category_id": bp.category_id,
        "expansion_id": bp.expansion_id, "blueprint_id": bp.id,
        "price": {"cents": p.price_cents, "currency": acct.currency}, "properties": dict(p.properties),
    }


def _common_fields(item: dict, target: dict) -> None:
    for name in ("description", "user_data_field", "tag"):
        if name in item and item[name] is not None:
            if not isinstance(item[name], str):
                raise ItemError({name: ["is not a string"]})
            target[name] = item[name]
    if "graded" in item and item["graded"] is not None:
        graded = item["graded"]
        if isinstance(graded, str) and graded.lower() in ("true", "false", "1", "0"):
            graded = graded.lower() in ("true", "1")
        if not isinstance(graded, (bool, int)):
            raise ItemError({"graded": ["is not a boolean"]})
        target["graded"] = bool(graded)


def create(world: World, acct: Account, item: Any, *, merge: bool = True) -> tuple[Product, dict]:
    """POST /products: validate, then merge into an identical product (same blueprint, same
    properties, same price) by adding quantity, or create a new row."""
    if not isinstance(item, dict):
        raise ItemError({"product": ["is invalid"]})
    bp = _blueprint(item.get("blueprint_id"))
    errors: dict[str, list[str]] = {}
    if item.get("price") is None and item.get("price_cents") is None:
        errors["price"] = ["can't be blank"]
    if item.get("quantity") is None:
        errors["quantity"] = ["can't be blank"]
    if errors:
        raise ItemError(errors)
    if item.get("price") is not None:
        cents = price_to_cents(item["price"])
    else:
        cents = _int_field("price_cents", item["price_cents"], minimum=1)
    quantity = _int_field("quantity", item["quantity"], minimum=1)
    checked = check_properties(bp, item.get("properties"), strict=item.get("error_mode") == "strict")
    if checked.errors:
        raise ItemError(_property_errors(checked.errors))
    extra: dict[str, Any] = {}
    _common_fields(item, extra)
    props = bp.default_properties()
    props.update(checked.values)
    candidate = Product(0, bp.id, quantity, cents, props)
    existing = acct.find_identical(candidate.merge_key()) if merge else None
    if existing is not None:
        existing.quantity += quantity
        for name, value in extra.items():
            setattr(existing, name, value)
        return existing, _warnings_body(checked.warnings)
    candidate.id = next(world.product_ids)
    for name, value in extra.items():
        setattr(candidate, name, value)
    acct.add(candidate)
    return candidate, _warnings_body(checked.warnings)


def owned(acct: Account, product_id: Any) -> Product:
    """Another account's product and a missing one look the same: 404 not_found."""
    try:
        pid = int(product_id)
    except (TypeError, ValueError):
        raise _not_found("Product")
    product = acct.products.get(pid)
    if product is None:
        raise _not_found("Product")
    return product


def update(acct: Account, product_id: Any, item: Any) -> tuple[Product, dict]:
    """PUT /products/:id. ``quantity`` is absolute; listed properties replace only those keys, so a
    boolean set to false becomes false while an omitted one stays as it was."""
    if not isinstance(item, dict):
        raise ItemError({"product": ["is invalid"]})
    product = owned(acct, product_id)
    bp = catalogue().blueprints[product.blueprint_id]
    changes: dict[str, Any] = {}
    if item.get("price") is not None:
        changes["price_cents"] = price_to_cents(item["price"])
    if item.get("quantity") is not None:
        changes["quantity"] = _int_field("quantity", item["quantity"], minimum=0)
    _common_fields(item, changes)
    checked = check_properties(bp, item.get("properties"), strict=item.get("error_mode") == "strict")
    if checked.errors:
        raise ItemError(_property_errors(checked.errors))
    old_key = product.merge_key()
    for name, value in changes.items():
        setattr(product, name, value)
    if checked.values:
        product.properties = {**product.properties, **checked.values}
    acct.rekey(product, old_key)
    return product, _warnings_body(checked.warnings)


def destroy(acct: Account, product_id: Any) -> Product:
    product = owned(acct, product_id)
    acct.remove(product)
    return product


def increment(acct: Account, product_id: Any, body: Any) -> tuple[Product, bool]:
    """POST /products/:id/increment: ±delta; a result ≤ 0 deletes the product. Returns (product, deleted)."""
    product = owned(acct, product_id)
    if not isinstance(body, dict) or body.get("delta_quantity") is None:
        raise ItemError({"delta_quantity": ["can't be blank"]}, code="missing_parameter")
    delta = body["delta_quantity"]
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise ItemError({"delta_quantity": ["is not an integer"]})
    product.quantity += delta
    if product.quantity <= 0:
        acct.remove(product)
        return product, True
    return product, False


# --- bulk jobs -------------------------------------------------------------------------------

def new_job(world: World, acct: Account, kind: str, items: list) -> Job:
    cfg = world.config
    job = Job(uuid=str(uuid.uuid4()), kind=kind, items=items, created=_now(),
              pending_seconds=float(cfg["job_pending_seconds"]), running_seconds=float(cfg["job_running_seconds"]))
    rate = float(world.fault("job_unprocessable_rate", acct.user_id))
    job.unprocessable = rate > 0 and random.random() < rate
    acct.jobs[job.uuid] = job
    acct.open_jobs.append(job)
    return job


def _now() -> float:
    return time.monotonic()


def _apply_item(world: World, acct: Account, kind: str, item: Any) -> tuple[int | None, dict]:
    if kind == "create":
        product, warnings = create(world, acct, item)
        return product.id, warnings
    if not isinstance(item, dict) or item.get("id") is None:
        raise ItemError({"id": ["can't be blank"]})
    if kind == "update":
        product, warnings = update(acct, item["id"], item)
        return product.id, warnings
    product = destroy(acct, item["id"])
    return product.id, {}


def advance_jobs(world: World, acct: Account) -> None:
    """Apply every job whose running phase has ended. Called before anything reads the account,
    so a job's effects appear exactly when it reports completed, whether or not anyone polls it."""
    if not acct.open_jobs:
        return
    now = _now()
    due = [job for job in acct.open_jobs if job.state(now) not in ("pending", "running")]
    if not due:
        return
    acct.open_jobs = [job for job in acct.open_jobs if job not in due]
    for job in due:
        if job.unprocessable:
            job.results = []
            continue
        results = []
        for index, item in enumerate(job.items):
            try:
                product_id, warnings = _apply_item(world, acct, job.kind, item)
            except ItemError as err:
                results.append({"result": "error", "job_index": index, "errors": err.errors})
                continue
            row: dict[str, Any] = {"result": "warning" if warnings else "ok", "job_index": index,
                                   "product_id": product_id}
            if warnings:
                row["warnings"] = warnings
            results.append(row)
        job.results = results


def job_body(job: Job) -> dict:
    state = job.state(_now())
    body: dict[str, Any] = {"uuid": job.uuid, "state": state, "spawned_children": len(job.items)}
    if state == "completed" and job.results is not None:
        stats = {"ok": 0, "warning": 0, "error": 0}
        for r in job.results:
            stats[r["result"]] += 1
        body["stats"] = stats
        body["results"] = job.results
    elif state == "unprocessable":
        body["stats"] = {"ok": 0, "warning": 0, "error": 0}
        body["results"] = []
    else:
        body["stats"] = {"ok": 0, "warning": 0, "error": 0, "pending": len(job.items)}
        body["results"] = []
    return body


# --- seeding ---------------------------------------------------------------------------------

def seed(world: World, acct: Account, count: int, *, seed_value: int = 0, game: str | int = "mtg") -> int:
    """Deterministic products on the fixture blueprints. Prices step by blueprint round so no two
    seeded rows are identical (CardTrader would have merged them).

    Fast enough for 250,000 rows in a couple of seconds because every property combination of a
    blueprint is built once and shared: product property dicts are always replaced, never mutated.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    bps = catalogue().blueprints_for_game(game)
    rng = random.Random(seed_value)
    plans = []
    for bp in bps:
        combos: list[dict] = [{}]
        for name, prop in bp.editable.items():
            # booleans mostly false, as in real stock; strings over their allowed values
            if prop.type == "boolean":
                values: tuple = (False, False, False, True)
            else:
                values = prop.possible_values or (prop.default,)
            combos = [{**c, name: v} for c in combos for v in values]
        keyed = [(c, tuple(sorted(c.items()))) for c in combos]
        plans.append((bp.id, keyed, len(keyed), rng.randint(10, 500)))
    nbp = len(plans)
    ids = world.product_ids
    products = acct.products
    index = acct.merge_index
    rand = rng.random
    for i in range(count):
        bp_id, keyed, ncombos, base = plans[i % nbp]
        props, key = keyed[int(rand() * ncombos)]
        price = base + i // nbp
        pid = next(ids)
        products[pid] = Product(pid, bp_id, 1 + int(rand() * 8), price, props, "", f"seed-{seed_value}-{i}")
        index.setdefault((bp_id, key, price), pid)
    return count


def encode_rows(rows: list[dict]) -> bytes:
    return json.dumps(rows, separators=(",", ":")).encode()
