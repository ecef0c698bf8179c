"""Contract tests: account and reference-data calls against the sandbox over real HTTP."""
from __future__ import annotations

import pytest

from syncops.cardtrader import AuthError, NotFound, client_for_token


def test_info_returns_the_tokens_app(client, sandbox_account):
    info = client.info()
    assert info.user_id == sandbox_account.user_id
    assert info.id == sandbox_account.app_id
    assert info.shared_secret == sandbox_account.shared_secret
    assert sandbox_account.shared_secret not in repr(info)


def test_info_with_a_rejected_token_is_an_auth_error(sandbox_settings, cardtrader_sandbox):
    with client_for_token("not-a-real-token") as bad, pytest.raises(AuthError) as err:
        bad.info()
    assert err.value.status == 401
    assert err.value.request_id  # CardTrader's envelope carries one
    assert "not-a-real-token" not in str(err.value)


def test_games_in_the_array_wrapper(client):
    games = client.games()
    assert any(g.id == 1 and g.name == "Magic" for g in games)


def test_games_as_a_bare_array(client, control):
    wrapped = client.games()
    control.set_config(games_shape="bare")
    try:
        bare = client.games()
    finally:
        control.set_config(games_shape="array")
    assert bare == wrapped


def test_categories_all_and_per_game(client):
    every = client.categories()
    mtg = client.categories(game_id=1)
    assert mtg and all(c.game_id == 1 for c in mtg)
    assert len(every) > len(mtg)
    single = next(c for c in mtg if c.id == 1)
    assert {"condition", "mtg_foil"} <= {p.name for p in single.properties}


def test_expansions(client):
    expansions = client.expansions()
    assert expansions and all(e.id and e.code for e in expansions)


def test_blueprints_export_and_its_404(client):
    blueprints = client.blueprints_export(1)
    assert blueprints and all(b.expansion_id == 1 for b in blueprints)
    assert any(p.name == "condition" for b in blueprints for p in b.editable_properties)
    with pytest.raises(NotFound) as err:
        client.blueprints_export(999_999_999)
    assert err.value.status == 404
