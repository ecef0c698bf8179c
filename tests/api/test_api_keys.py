"""API keys: created by the command (printed once, stored hashed), revoked in the admin."""
from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from brxsync.api.models import ApiKey

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_a_working_key_once_and_stores_only_its_hash(seller):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "orders-service", stdout=out, stderr=err)
    raw_key = out.getvalue().strip()
    assert raw_key.startswith("brx_") and len(raw_key) > 40
    row = ApiKey.objects.get(name="orders-service")
    assert row.hashed_key == hashlib.sha256(raw_key.encode()).hexdigest()
    assert raw_key not in {row.prefix, row.hashed_key, row.name}
    assert raw_key.startswith(row.prefix) and len(row.prefix) < 16
    assert raw_key not in err.getvalue()  # the key goes to stdout only, once
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert client.get(f"/api/v1/sellers/{seller.pk}/status").status_code == 200


def test_create_api_key_refuses_an_empty_name():
    with pytest.raises(CommandError):
        call_command("create_api_key", "  ", stdout=StringIO(), stderr=StringIO())
    assert not ApiKey.objects.exists()


def test_two_keys_differ():
    (_, a), (_, b) = ApiKey.generate("a"), ApiKey.generate("b")
    assert a != b


def test_admin_revoke_action_and_the_key_is_never_shown(admin_client, seller):
    api_key, raw_key = ApiKey.generate("billing")
    listing = admin_client.get("/admin/api/apikey/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "billing" in page and api_key.prefix in page
    assert raw_key not in page and api_key.hashed_key not in page
    change = admin_client.get(f"/admin/api/apikey/{api_key.pk}/change/").content.decode()
    assert raw_key not in change and api_key.hashed_key not in change

    response = admin_client.post("/admin/api/apikey/", {"action": "revoke_keys", "_selected_action": [str(api_key.pk)]})
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert client.get(f"/api/v1/sellers/{seller.pk}/status").status_code == 401


def test_admin_add_shows_the_new_key_once(admin_client):
    response = admin_client.post("/admin/api/apikey/add/", {"name": "from-admin"}, follow=True)
    assert response.status_code == 200
    row = ApiKey.objects.get(name="from-admin")
    shown = [str(m) for m in response.context["messages"]]
    raw = next(m.split(": ")[-1] for m in shown if "shown once" in m)
    assert hashlib.sha256(raw.encode()).hexdigest() == row.hashed_key
    assert raw not in admin_client.get(f"/admin/api/apikey/{row.pk}/change/").content.decode()
