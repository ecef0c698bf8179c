"""CardTrader's reference data (games, categories, expansions, blueprints) loaded from real 2022
response bodies, and the property rules that products are validated against.

The fixtures are the live API's own bodies, so what the sandbox serves for reference data is what
CardTrader served; the product rules (editable vs read-only, defaults, strict mode) are derived
from each blueprint's ``editable_properties`` exactly as CardTrader documents them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"

GAME_SLUGS = {"mtg": 1, "magic": 1, "digimon": 8}


def load_fixture(name: str) -> Any:
    with (FIXTURES / name).open(encoding="utf-8") as fh:
        return json.load(fh)


@dataclass(frozen=True)
class Property:
    name: str
    type: str
    possible_values: tuple
    default: Any

    def coerce(self, value: Any) -> tuple[bool, Any]:
        """(valid, normalised value). Booleans also accept "true"/"false", as CardTrader's forms do."""
        if self.type == "boolean":
            if isinstance(value, bool):
                return True, value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return True, value.lower() == "true"
            return False, None
        if not isinstance(value, str):
            return False, None
        if self.possible_values and value not in self.possible_values:
            return False, None
        return True, value


@dataclass(frozen=True)
class Blueprint:
    id: int
    name: str
    game_id: int
    category_id: int
    expansion_id: int
    editable: dict[str, Property]
    fixed: dict[str, Any]
    raw: dict = field(repr=False, compare=False, hash=False)

    def default_properties(self) -> dict[str, Any]:
        return {name: prop.default for name, prop in self.editable.items()}


def _property(raw: dict) -> Property:
    default: Any = raw.get("default_value")
    if raw.get("type") == "boolean":
        default = str(default).lower() == "true"
    return Property(raw["name"], raw.get("type", "string"), tuple(raw.get("possible_values") or ()), default)


class Catalogue:
    """Immutable reference data plus derived indexes; one instance shared by every request."""

    def __init__(self) -> None:
        self.games_body: dict = load_fixture("games.json")
        self.categories: list[dict] = load_fixture("categories.json")
        self.expansions: list[dict] = load_fixture("expansions.json")
        self.expansions_by_id = {e["id"]: e for e in self.expansions}
        self.marketplace: dict = load_fixture("marketplace_products_blueprint_1.json")
        self.blueprints_by_expansion: dict[int, list[dict]] = {}
        self.blueprints: dict[int, Blueprint] = {}
        for path in sorted(FIXTURES.glob("blueprints_export_expansion_*.json")):
            rows = json.loads(path.read_text(encoding="utf-8"))
            expansion_id = int(path.stem.rsplit("_", 1)[1])
            self.blueprints_by_expansion[expansion_id] = rows
            for row in rows:
                self.blueprints[row["id"]] = Blueprint(
                    id=row["id"], name=row["name"], game_id=row["game_id"], category_id=row["category_id"],
                    expansion_id=row["expansion_id"],
                    editable={p["name"]: _property(p) for p in row.get("editable_properties", [])},
                    fixed=dict(row.get("fixed_properties") or {}), raw=row,
                )
        self.sample_orders: list[dict] = load_fixture("orders.json")

    def blueprints_for_game(self, game: str | int) -> list[Blueprint]:
        game_id = GAME_SLUGS.get(game, game) if isinstance(game, str) else game
        found = [bp for bp in self.blueprints.values() if bp.game_id == game_id]
        if not found:
            raise ValueError(f"no fixture blueprints for game {game!r}")
        return sorted(found, key=lambda bp: bp.id)

    def expansion_ref(self, expansion_id: int) -> dict:
        exp = self.expansions_by_id.get(expansion_id, {"id": expansion_id, "code": "", "name": ""})
        return {"id": exp["id"], "code": exp["code"], "name_en": exp["name"]}


@cache
def catalogue() -> Catalogue:
    return Catalogue()


class PropertyResult:
    """Outcome of checking a ``properties`` object against a blueprint."""

    __slots__ = ("errors", "values", "warnings")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.warnings: dict[str, list[str]] = {}
        self.errors: dict[str, list[str]] = {}


def check_properties(bp: Blueprint, given: Any, *, strict: bool) -> PropertyResult:
    """Validate the given properties the way CardTrader does.

    Read-only (non-editable) names are ignored with a warning in both modes; an invalid value of an
    editable property fails the item in strict mode and is replaced by the blueprint default with a
    warning otherwise. Only the names given appear in ``values`` (update semantics: unlisted keys
    stay as they are).
    """
    result = PropertyResult()
    if given is None:
        return result
    if not isinstance(given, dict):
        result.errors["properties"] = ["is invalid"]
        return result
    for name, value in given.items():
        prop = bp.editable.get(name)
        if prop is None:
            result.warnings.setdefault(name, []).append(f"Read only property {name} has been ignored")
            continue
        ok, normalised = prop.coerce(value)
        if ok:
            result.values[name] = normalised
        elif strict:
            result.errors.setdefault(name, []).append(f"{value!r} is not a valid value for {name}")
        else:
            result.values[name] = prop.default
            result.warnings.setdefault(name, []).append(
                f"{value!r} is not a valid value for {name}, replaced with default {prop.default!r}")
    return result
