"""``POST /api/v1/admin/caches/clear``: service keys only, one seller or all, same service as the admin."""
from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache

from tests.api.conftest import assert_envelope

pytestmark = pytest.mark.django_db
URL = "/api/v1/admin/caches/clear"


@pytest.fixture(autouse=True)
def _isolated_mapping_cache(settings):
    from inventory.catalogue_mapping import clear_local_cache

    settings.CATALOGUE_MAPPING_CACHE_PREFIX = f"bpmap-api-{uuid.uuid4().hex[:10]}"
    clear_local_cache()
    yield
    clear_local_cache()


def test_service_key_clears_one_seller_then_all(service_client, make_seller, make_item):
    from inventory.catalogue_mapping import cache_prefix

    seller = make_seller()
    make_item(seller, blueprint_id=31)
    cache.set_many({f"{cache_prefix()}:31": "cards_prints:1", f"{cache_prefix()}:32": "cards_prints:2"})

    one = service_client.post(URL, {"seller_id": str(seller.pk)}, format="json")
    assert one.status_code == 200
    assert one.json() == {"scope": str(seller.pk), "blueprint_keys": 1, "settings_entries": 0}
    assert cache.get(f"{cache_prefix()}:31") is None and cache.get(f"{cache_prefix()}:32") is not None

    everyone = service_client.post(URL, {}, format="json")
    assert everyone.status_code == 200 and everyone.json()["scope"] == "all"
    assert everyone.json()["blueprint_keys"] == 1
    assert cache.get(f"{cache_prefix()}:32") is None


def test_seller_jwt_is_forbidden_and_anonymous_unauthorised(seller_client, make_seller):
    seller = make_seller()
    assert_envelope(seller_client(seller.pk).post(URL, {}, format="json"), 403)
    from rest_framework.test import APIClient

    assert APIClient().post(URL, {}, format="json").status_code == 401


def test_bad_seller_id_is_a_400(service_client):
    assert_envelope(service_client.post(URL, {"seller_id": "nope"}, format="json"), 400)
