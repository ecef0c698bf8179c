"""Stage rows and their binary COPY encoding, without Django.

The import's export parser runs in a child process (``export_child``) that must start fast and
never touch a database, so what it needs lives here: the stage columns, ``export_row`` (a raw
``/products/export`` row as a stage row) and the encoding of a chunk of stage rows as PostgreSQL
binary COPY data. ``stock_stage`` re-exports the names it always had.

Encoded chunk (``encode_chunk`` → bytes, read back by ``stock_stage.EncodedChunk``)::

    header   >IIII   n rows, body bytes, seen bytes, names bytes
    offsets  (n + 1) × uint32 (native)   where each row's body starts in the bodies
    bps      n × int32 (native)          each row's blueprint id
    bodies   each row's fields in ``BODY_COLUMNS`` order, each as int32 length + value, NO field count
    seen     the product ids as COPY text ("id\\n" each), for the run's ``seen`` table
    names    orjson list of the chunk's distinct [blueprint_id, name] pairs (names not empty)

The parent adds the field count in front of each body and the print id / table (known only after
its catalogue lookup) plus any constant columns behind it (``EncodedChunk.copy_data``).
"""
from __future__ import annotations

import json
import struct
import uuid
from array import array
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

import orjson

# The staged columns, in the stage rows' order. ``properties`` travels as JSON text.
STAGE_COLUMNS = (
    "product_id", "blueprint_id", "print_id", "print_table", "name", "game_id", "category_id", "expansion_id",
    "quantity", "price_cents", "currency", "properties", "description", "user_data_field", "graded",
)
# COPY's per-column types (same order).
COPY_TYPES = ("int8", "int4", "int8", "text", "text", "int4", "int4", "int4", "int4", "int4", "text", "jsonb",
              "text", "text", "bool")
INT_BOUNDS = {"int4": (-2**31, 2**31 - 1), "int8": (-2**63, 2**63 - 1)}

Row = list[Any]  # STAGE_COLUMNS order; print_id / print_table filled by the catalogue mapping

_json_text = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
_SORTED = orjson.OPT_SORT_KEYS


def properties_text(props: Any) -> str:
    """Properties as compact JSON with sorted keys. orjson takes ~1.4 µs a row where the stdlib
    encoder took ~6.5 (250,000 rows per big import); what orjson refuses (an integer beyond 64
    bits) goes through the stdlib encoder. PostgreSQL casts the text to jsonb either way."""
    try:
        return orjson.dumps(props, option=_SORTED).decode()
    except orjson.JSONEncodeError:
        return _json_text(props)


def product_row(p: Any) -> Row:
    """A client ``Product`` as a stage row. Name and currency are cut to their column sizes."""
    return [
        p.id, p.blueprint_id, None, "", p.name_en[:255], p.game_id, p.category_id, p.expansion_id,
        p.quantity, p.price_cents, p.currency[:3], properties_text(p.properties),
        p.description, p.user_data_field, p.graded,
    ]


def export_row(d: dict[str, Any]) -> Row:
    """A raw ``/products/export`` row (ijson's dict) as a stage row, without building a ``Product``.

    The import streams 250,000 of these, and going through ``Product.from_json`` + ``product_row``
    cost three times as much Python per row as everything else the client does. The fast path
    takes the export's own shape only (every type exactly what CardTrader sends); any other row
    (a string id, a ``price`` object, missing keys...) goes through ``Product.from_json``, so both
    paths accept and produce the same thing and a malformed row raises the same error.
    """
    pid, bp, qty, cents = d.get("id"), d.get("blueprint_id"), d.get("quantity"), d.get("price_cents")
    props, graded, exp = d.get("properties_hash"), d.get("graded"), d.get("expansion")
    name, cur, desc, udf = d.get("name_en"), d.get("price_currency"), d.get("description"), d.get("user_data_field")
    game, cat = d.get("game_id"), d.get("category_id")
    if (type(pid) is int and type(bp) is int and type(qty) is int and type(cents) is int and type(props) is dict
            and type(graded) is bool and type(name) is str and type(cur) is str and type(desc) is str
            and type(udf) is str and type(exp) is dict and type(exp_id := exp.get("id")) is int
            and (game is None or type(game) is int) and (cat is None or type(cat) is int)
            and "price" not in d and d.get("expansion_id") is None):
        return [pid, bp, None, "", name[:255], game, cat, exp_id, qty, cents, cur[:3], properties_text(props),
                desc, udf, graded]
    # Imported here: the client package pulls in requests, Celery and the limiter, which the parse
    # child never needs for the export's own shape.
    from syncops.cardtrader.types import Product

    return product_row(Product.from_json(d))


# ------------------------------------------------------------------------------ binary COPY

class EncodeError(ValueError):
    """A stage row that binary COPY cannot carry as it is (an integer its column cannot hold, a
    wrong type). The message names the product and the column, like ``check_int_ranges``'s."""


# The body's columns: the fixed-width ones first (one struct call on the usual row), then text.
BODY_COLUMNS = ("product_id", "blueprint_id", "game_id", "category_id", "expansion_id", "quantity", "price_cents",
                "graded", "name", "currency", "properties", "description", "user_data_field")
_BODY_INDEX = tuple(STAGE_COLUMNS.index(c) for c in BODY_COLUMNS)
_BODY_TYPES = tuple(COPY_TYPES[i] for i in _BODY_INDEX)
# Then the parent's columns: the mapping, then any constant tail.
MAPPED_COLUMNS = ("print_id", "print_table")
_FIXED = struct.Struct(">iqiiiiiiiiiiiii?").pack  # length + value of the first eight columns
_I4 = struct.Struct(">i").pack
_I2 = struct.Struct(">h").pack
_HEADER = struct.Struct(">IIII")
_NULL = b"\xff\xff\xff\xff"
_JSONB_VERSION = b"\x01"
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + b"\0\0\0\0" + b"\0\0\0\0"
COPY_TRAILER = b"\xff\xff"
_SCALAR = {"int8": struct.Struct(">iq").pack, "int4": struct.Struct(">ii").pack}
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def field_count(n: int) -> bytes:
    return _I2(n)


def encode_value(value: Any, pg_type: str, *, product: Any = None, column: str = "") -> bytes:
    """One field (length + value) in binary COPY form; NULL for None (the server then refuses a NOT
    NULL column as before). Integers are range-checked: psycopg's int4 dumper would keep the low
    32 bits of a larger value where text COPY made PostgreSQL refuse it."""
    if value is None:
        return _NULL
    if pg_type in INT_BOUNDS:
        if type(value) is not int and type(value) is not bool:
            raise EncodeError(f"product {product}: {column} {value!r} is not an integer")
        low, high = INT_BOUNDS[pg_type]
        if not low <= value <= high:
            raise EncodeError(f"product {product}: {column} {value} is out of range for its column")
        return _SCALAR[pg_type](8 if pg_type == "int8" else 4, value)
    if pg_type == "bool":
        if type(value) is not bool:
            raise EncodeError(f"product {product}: {column} {value!r} is not a boolean")
        return b"\0\0\0\x01\x01" if value else b"\0\0\0\x01\x00"
    if pg_type in ("text", "jsonb"):
        if type(value) is not str:
            raise EncodeError(f"product {product}: {column} {value!r} is not text")
        try:
            data = value.encode()
        except UnicodeEncodeError as exc:
            raise EncodeError(f"product {product}: {column} is not valid text ({exc.reason})") from None
        if pg_type == "jsonb":
            return _I4(len(data) + 1) + _JSONB_VERSION + data
        return _I4(len(data)) + data
    if pg_type == "uuid":
        return b"\0\0\0\x10" + (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes
    if pg_type == "timestamptz":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise EncodeError(f"{column} {value!r} is not an aware datetime")
        return _SCALAR["int8"](8, (value - _PG_EPOCH) // _MICROSECOND)
    raise EncodeError(f"no binary encoding for {pg_type}")


def encode_body(r: Row) -> bytes:
    """A stage row's ``BODY_COLUMNS`` as binary COPY fields (no field count, no mapping)."""
    try:
        if type(r[14]) is not bool:
            raise TypeError
        name, cur, props, desc, udf = r[4].encode(), r[10].encode(), r[11].encode(), r[12].encode(), r[13].encode()
        head = _FIXED(8, r[0], 4, r[1], 4, r[5], 4, r[6], 4, r[7], 4, r[8], 4, r[9], 1, r[14])
    except (struct.error, TypeError, AttributeError, UnicodeEncodeError):
        # A NULL, a value out of its column's range, or a wrong type: field by field, which
        # names what is wrong.
        return b"".join(encode_value(r[i], t, product=r[0], column=STAGE_COLUMNS[i])
                        for i, t in zip(_BODY_INDEX, _BODY_TYPES, strict=True))
    return b"".join((head, _I4(len(name)), name, _I4(len(cur)), cur, _I4(len(props) + 1), _JSONB_VERSION, props,
                     _I4(len(desc)), desc, _I4(len(udf)), udf))


Entry = tuple[Any, Any, Any, bytes]  # (product id, blueprint id, name, encode_body's bytes)


def export_entry(d: dict[str, Any]) -> Entry:
    """``export_row`` then ``encode_body`` in one step, for the parser process: on the export's own
    shape the fields go from ijson's / orjson's dict straight to bytes, without the stage row
    between (~1 s of 250,000 rows' CPU). Anything else (including a value out of its column's range)
    takes the two-step path, which converts and refuses exactly as before."""
    pid, bp, qty, cents = d.get("id"), d.get("blueprint_id"), d.get("quantity"), d.get("price_cents")
    props, graded, exp = d.get("properties_hash"), d.get("graded"), d.get("expansion")
    name, cur, desc, udf = d.get("name_en"), d.get("price_currency"), d.get("description"), d.get("user_data_field")
    if (type(pid) is int and type(bp) is int and type(qty) is int and type(cents) is int and type(props) is dict
            and type(graded) is bool and type(name) is str and type(cur) is str and type(desc) is str
            and type(udf) is str and type(exp) is dict and type(exp_id := exp.get("id")) is int
            and "price" not in d and d.get("expansion_id") is None):
        game, cat = d.get("game_id"), d.get("category_id")
        if type(game) is int and type(cat) is int:  # both NULL-able: those rows take the two steps
            try:
                head = _FIXED(8, pid, 4, bp, 4, game, 4, cat, 4, exp_id, 4, qty, 4, cents, 1, graded)
                name = name[:255]
                n, c, p, de, u = (name.encode(), cur[:3].encode(), properties_text(props).encode(), desc.encode(),
                                  udf.encode())
            except (struct.error, UnicodeEncodeError):
                pass
            else:
                return pid, bp, name, b"".join((head, _I4(len(n)), n, _I4(len(c)), c, _I4(len(p) + 1), _JSONB_VERSION,
                                                p, _I4(len(de)), de, _I4(len(u)), u))
    r = export_row(d)
    return r[0], r[1], r[4], encode_body(r)


def encode_chunk(rows: list[Row]) -> bytes:
    """A chunk of stage rows (already deduplicated) in the layout of the module docstring."""
    return encode_entries([(r[0], r[1], r[4], encode_body(r)) for r in rows])


def encode_entries(entries: list[Entry]) -> bytes:
    """A chunk of ``export_entry``'s (already deduplicated) in the layout of the module docstring."""
    ids, bp_ids, names, bodies = zip(*entries, strict=True) if entries else ((), (), (), ())
    offsets = array("I", accumulate(map(len, bodies), initial=0))
    if all(type(bp) is int for bp in bp_ids):
        bps = array("i", bp_ids)
        named = sorted(p for p in set(zip(bp_ids, names, strict=True)) if p[1])
    else:  # a NULL blueprint (only from a malformed row): the server refuses it (NOT NULL); 0 maps to nothing
        bps = array("i", [bp if type(bp) is int else 0 for bp in bp_ids])
        named = sorted({(bp, n) for bp, n in zip(bp_ids, names, strict=True) if n and type(bp) is int})
    seen = "".join([f"{i}\n" for i in ids]).encode()
    names_json = orjson.dumps(named)
    blob = b"".join(bodies)
    return b"".join((_HEADER.pack(len(ids), len(blob), len(seen), len(names_json)), offsets.tobytes(),
                     bps.tobytes(), blob, seen, names_json))


def decode_chunk(data: bytes | memoryview) -> tuple[int, array, array, memoryview, bytes, list[tuple[int, str]]]:
    """(n, offsets, bps, bodies, seen, names) of ``encode_chunk``'s bytes."""
    view = memoryview(data)
    n, body_len, seen_len, names_len = _HEADER.unpack_from(view, 0)
    pos = _HEADER.size
    offsets = array("I")
    offsets.frombytes(view[pos:pos + 4 * (n + 1)])
    pos += 4 * (n + 1)
    bps = array("i")
    bps.frombytes(view[pos:pos + 4 * n])
    pos += 4 * n
    bodies = view[pos:pos + body_len]
    pos += body_len
    seen = bytes(view[pos:pos + seen_len])
    pos += seen_len
    names = [(bp, name) for bp, name in orjson.loads(view[pos:pos + names_len])]
    return n, offsets, bps, bodies, seen, names
