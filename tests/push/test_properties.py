"""Property normalisation: aliases, languages by table (never truncated), explicit booleans."""
import pytest

from inventory.properties import PropertyError, editable_view, normalise_properties


@pytest.mark.parametrize(("given", "expected"), [
    ("NM", "Near Mint"), ("nm", "Near Mint"), ("Near Mint", "Near Mint"), ("near  mint", "Near Mint"),
    ("SP", "Slightly Played"), ("LP", "Slightly Played"), ("Lightly Played", "Slightly Played"),
    ("MP", "Moderately Played"), ("PL", "Played"), ("HP", "Heavily Played"), ("PO", "Poor"), ("M", "Mint"),
])
def test_condition_aliases(given, expected):
    assert normalise_properties({"condition": given}) == {"condition": expected}


@pytest.mark.parametrize(("given", "expected"), [
    ("Japanese", "jp"), ("ja", "jp"), ("JP", "jp"), ("Korean", "kr"), ("ko", "kr"), ("Czech", "cz"),
    ("English", "en"), ("Italian", "it"), ("German", "de"), ("Chinese Simplified", "zh-CN"),
    ("zh-tw", "zh-TW"), ("Portuguese", "pt"),
])
def test_languages_are_mapped_not_truncated(given, expected):
    assert normalise_properties({"language": given}) == {"mtg_language": expected}


def test_language_property_follows_the_game():
    assert normalise_properties({"language": "Japanese"}, game_id=5) == {"pokemon_language": "jp"}
    assert normalise_properties({"lang": "Swedish"}, game_id=5) == {"pokemon_language": "sv"}
    with pytest.raises(PropertyError) as err:
        normalise_properties({"language": "Swedish"}, game_id=1)
    assert "language" in err.value.errors
    with pytest.raises(PropertyError):
        normalise_properties({"language": "Korean"}, game_id=8)  # Digimon: en and jp only


def test_foil_maps_to_the_game_flag_and_booleans_are_explicit():
    assert normalise_properties({"foil": True, "signed": "no", "altered": 0}) == {
        "mtg_foil": True, "signed": False, "altered": False}
    assert normalise_properties({"foil": "true"}, game_id=6) == {"fab_foil": True}
    # Clearing a boolean is an explicit false, never an omission.
    assert normalise_properties({"foil": None, "condition": None, "language": None}) == {
        "mtg_foil": False, "condition": "Near Mint", "mtg_language": "en"}


def test_every_bad_key_is_reported_at_once():
    with pytest.raises(PropertyError) as err:
        normalise_properties({"condition": "Plaied", "language": "Klingon", "foil": "maybe",
                              "mtg_rarity": "Rare", "colour": "red"})
    assert set(err.value.errors) == {"condition", "language", "foil", "mtg_rarity", "colour"}
    assert "read-only" in err.value.errors["mtg_rarity"][0]
    assert "Plaied" in err.value.errors["condition"][0]


def test_editable_view_drops_read_only_and_keeps_false():
    stored = {"condition": "Near Mint", "mtg_foil": "false", "signed": False, "mtg_rarity": "Rare",
              "collector_number": "44", "mtg_language": "jp"}
    assert editable_view(stored, game_id=1) == {
        "condition": "Near Mint", "mtg_foil": False, "signed": False, "mtg_language": "jp"}
