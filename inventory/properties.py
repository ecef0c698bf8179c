"""CardTrader product properties: the names, the allowed values and the aliases sellers type.

Sellers (and Ebartex's front end) speak in friendly terms: ``{"condition": "NM", "language":
"Japanese", "foil": true}``. CardTrader wants its own names and values, per game:
``{"condition": "Near Mint", "mtg_language": "jp", "mtg_foil": true}``. This module is the one
place that translates, and it refuses what CardTrader would silently replace by a default
(non-strict mode turns an unknown condition into "Near Mint" with only a warning).

Two pitfalls of the earlier implementation are designed out here:
- languages are mapped through a table, never truncated ("Japanese" is ``jp``, not ``ja``);
- booleans are always explicit: clearing ``foil`` stores and sends ``mtg_foil: false``, because
  CardTrader leaves a property unchanged when it is omitted.

The tables come from CardTrader's ``GET /categories`` reference data (``possible_values``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MTG = 1

CONDITIONS: tuple[str, ...] = (
    "Mint", "Near Mint", "Slightly Played", "Moderately Played", "Played", "Heavily Played", "Poor",
)
DEFAULT_CONDITION = "Near Mint"
DEFAULT_LANGUAGE = "en"

_CONDITION_ALIASES: dict[str, str] = {
    "m": "Mint", "mt": "Mint", "mint": "Mint",
    "nm": "Near Mint", "near mint": "Near Mint", "nearmint": "Near Mint", "nm/m": "Near Mint",
    "ex": "Slightly Played", "sp": "Slightly Played", "lp": "Slightly Played", "slightly played": "Slightly Played",
    "lightly played": "Slightly Played", "excellent": "Slightly Played",
    "mp": "Moderately Played", "moderately played": "Moderately Played", "gd": "Moderately Played",
    "good": "Moderately Played",
    "pl": "Played", "played": "Played",
    "hp": "Heavily Played", "heavily played": "Heavily Played",
    "po": "Poor", "poor": "Poor", "dmg": "Poor", "damaged": "Poor",
}

# CardTrader language codes (the union of every game's *_language possible_values).
LANGUAGE_CODES: tuple[str, ...] = (
    "en", "it", "fr", "de", "es", "pt", "jp", "kr", "zh-CN", "zh-TW", "ru", "nl", "pl", "cz", "hu", "sv",
)
# Names, ISO 639-1 codes and common spellings → CardTrader's code. CardTrader's codes are not
# ISO everywhere (jp, kr, cz), which is exactly why truncating a name cannot work.
_LANGUAGE_ALIASES: dict[str, str] = {
    "english": "en", "eng": "en",
    "italian": "it", "italiano": "it", "ita": "it",
    "french": "fr", "français": "fr", "francais": "fr", "fra": "fr",
    "german": "de", "deutsch": "de", "ger": "de", "deu": "de",
    "spanish": "es", "español": "es", "espanol": "es", "spa": "es",
    "portuguese": "pt", "português": "pt", "portugues": "pt", "por": "pt",
    "japanese": "jp", "ja": "jp", "jpn": "jp", "jap": "jp",
    "korean": "kr", "ko": "kr", "kor": "kr",
    "chinese simplified": "zh-CN", "simplified chinese": "zh-CN", "zh-cn": "zh-CN", "zh_cn": "zh-CN",
    "zh-hans": "zh-CN", "chs": "zh-CN", "s-chinese": "zh-CN",
    "chinese traditional": "zh-TW", "traditional chinese": "zh-TW", "zh-tw": "zh-TW", "zh_tw": "zh-TW",
    "zh-hant": "zh-TW", "cht": "zh-TW", "t-chinese": "zh-TW",
    "russian": "ru", "rus": "ru",
    "dutch": "nl", "nld": "nl",
    "polish": "pl", "pol": "pl",
    "czech": "cz", "cs": "cz", "ces": "cz",
    "hungarian": "hu", "hun": "hu",
    "swedish": "sv", "swe": "sv",
}

# Per game: the CardTrader name of the language property and of the foil boolean.
_LANGUAGE_PROPERTY: dict[int, str] = {
    1: "mtg_language", 2: "FF_language", 3: "fow_language", 4: "yugioh_language", 5: "pokemon_language",
    6: "fab_language", 8: "digimon_language", 9: "dragonball_language", 10: "vanguard_language",
    11: "meta_zoo_language", 12: "gateruler_language",
}
_FOIL_PROPERTY: dict[int, str] = {
    1: "mtg_foil", 2: "mtg_foil", 5: "pokemon_foil", 6: "fab_foil", 8: "digimon_foil", 9: "dragonball_foil",
    12: "gateruler_foil",
}
# Languages each game allows (from its *_language possible_values); unknown games allow all codes.
_GAME_LANGUAGES: dict[int, frozenset[str]] = {
    2: frozenset({"de", "en", "es", "fr", "it", "jp", "pt", "zh-CN"}),
    3: frozenset({"de", "en", "es", "fr", "it", "jp", "zh-CN", "zh-TW"}),
    6: frozenset({"de", "en", "es", "fr", "it", "zh-TW"}),
    8: frozenset({"en", "jp"}),
    9: frozenset({"de", "en", "es", "fr", "it", "jp", "kr", "pt", "ru", "zh-CN", "zh-TW"}),
    11: frozenset({"en"}),
    12: frozenset({"en", "jp"}),
}
_SV_GAMES = frozenset({5})  # Swedish exists only for Pokémon
# Booleans every game may carry besides its foil flag.
_COMMON_BOOLEANS = ("signed", "altered", "first_edition", "pokemon_reverse", "fow_first_edition")
# Fixed by the blueprint: CardTrader ignores them with a warning, so they are never sent.
READ_ONLY = frozenset({
    "mtg_rarity", "collector_number", "cmc", "mtg_card_colors", "tournament_legal", "artist",
    "fab_rarity", "fab_faction", "pitch_value", "fab_color", "fab_class", "fab_talent", "fab_type",
    "pokemon_rarity", "pokemon_stage", "pokemon_type", "pokemon_attack", "pokemon_species",
    "yugioh_rarity", "fow_rarity", "fow_elements", "digimon_rarity", "dragonball_rarity", "vanguard_rarity",
})

_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f", ""}


class PropertyError(ValueError):
    """Invalid properties; ``errors`` maps each offending key to its messages (a DRF-style dict)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def language_property(game_id: int | None) -> str:
    return _LANGUAGE_PROPERTY.get(game_id or MTG, "mtg_language")


def foil_property(game_id: int | None) -> str | None:
    return _FOIL_PROPERTY.get(game_id or MTG)


def boolean_properties(game_id: int | None) -> tuple[str, ...]:
    foil = foil_property(game_id)
    return ((foil,) if foil else ()) + _COMMON_BOOLEANS


def normalise_condition(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be one of {', '.join(CONDITIONS)} (or an alias such as NM, SP, MP, PL, HP, PO)")
    text = " ".join(value.strip().split())
    for name in CONDITIONS:
        if text.lower() == name.lower():
            return name
    try:
        return _CONDITION_ALIASES[text.lower()]
    except KeyError:
        raise ValueError(
            f"unknown condition {value!r}: use one of {', '.join(CONDITIONS)} or NM, SP, MP, PL, HP, PO"
        ) from None


def normalise_language(value: Any, game_id: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a language name or code, e.g. 'en', 'Japanese'")
    text = " ".join(value.strip().split())
    code = next((c for c in LANGUAGE_CODES if c.lower() == text.lower()), None)
    if code is None:
        code = _LANGUAGE_ALIASES.get(text.lower())
    if code is None:
        raise ValueError(f"unknown language {value!r}: use one of {', '.join(LANGUAGE_CODES)} or a full name")
    allowed = _GAME_LANGUAGES.get(game_id or MTG)
    if code == "sv" and (game_id or MTG) not in _SV_GAMES:
        allowed = frozenset(LANGUAGE_CODES) - {"sv"}
    if allowed is not None and code not in allowed:
        raise ValueError(f"language {code!r} does not exist for this game (allowed: {', '.join(sorted(allowed))})")
    return code


def normalise_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")


def _canonical_key(key: str, game_id: int | None) -> str:
    """The CardTrader name for a friendly or CardTrader key ("foil" → "mtg_foil" for MTG)."""
    lowered = key.strip()
    if lowered.lower() == "foil":
        foil = foil_property(game_id)
        if foil is None:
            raise KeyError(key)
        return foil
    if lowered.lower() in ("language", "lang"):
        return language_property(game_id)
    return lowered


def normalise_properties(raw: Mapping[str, Any], *, game_id: int | None = None) -> dict[str, Any]:
    """Validate and translate a (partial) properties mapping into CardTrader's names and values.

    ``None`` for a key clears it to CardTrader's default, sent explicitly: ``false`` for a
    boolean, "Near Mint" for the condition, "en" for the language. Read-only properties are
    refused (they belong to the blueprint); unknown names too, so a typo never goes out.
    Raises ``PropertyError`` listing every bad key at once.
    """
    if not isinstance(raw, Mapping):
        raise PropertyError({"properties": ["must be an object"]})
    out: dict[str, Any] = {}
    errs: dict[str, list[str]] = {}
    lang_prop = language_property(game_id)
    booleans = set(boolean_properties(game_id))
    for key, value in raw.items():
        try:
            name = _canonical_key(str(key), game_id)
        except KeyError:
            errs[str(key)] = ["this game has no foil property"]
            continue
        try:
            if name in READ_ONLY:
                raise ValueError("read-only: fixed by the blueprint on CardTrader")
            if name == "condition":
                out[name] = DEFAULT_CONDITION if value is None else normalise_condition(value)
            elif name == lang_prop or name.endswith("_language"):
                if name != lang_prop:
                    raise ValueError(f"this game's language property is {lang_prop}")
                out[name] = DEFAULT_LANGUAGE if value is None else normalise_language(value, game_id)
            elif name in booleans:
                out[name] = False if value is None else normalise_bool(value)
            elif name == "fow_foil" and (game_id or MTG) == 3:
                allowed = ("Foil", "Full Art", "Regular", "Uber Rare")
                if value is None:
                    out[name] = "Regular"
                elif value in allowed:
                    out[name] = value
                else:
                    raise ValueError(f"must be one of {', '.join(allowed)}")
            else:
                raise ValueError("unknown property for this game")
        except ValueError as exc:
            errs.setdefault(str(key), []).append(str(exc))
    if errs:
        raise PropertyError(errs)
    return out


def editable_view(properties: Mapping[str, Any], *, game_id: int | None = None) -> dict[str, Any]:
    """What to send CardTrader for an item's stored properties: read-only keys dropped and every
    boolean present as a real ``true``/``false`` (an imported ``"false"`` string included), so an
    un-set flag is sent as ``false`` instead of being omitted (omitted means "unchanged")."""
    booleans = set(boolean_properties(game_id))
    out: dict[str, Any] = {}
    for key, value in properties.items():
        if key in READ_ONLY:
            continue
        if key in booleans:
            try:
                value = normalise_bool(value)
            except ValueError:
                value = bool(value)
        out[key] = value
    return out
