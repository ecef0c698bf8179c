"""Secrets at rest: encrypted, rotatable, and never in plaintext in the database."""
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from inventory import crypto
from inventory.models import SyncSettings

TOKEN = "eyJhbGciOiJSUzI1NiJ9.sandbox-token-for-tests.signature"
SECRET = "5acf05a1b2c3d4e5f60718293a4b5c6d"


def test_round_trip_and_fresh_ciphertext():
    a, b = crypto.encrypt(TOKEN), crypto.encrypt(TOKEN)
    assert a != b and TOKEN not in a
    assert crypto.decrypt(a) == TOKEN


def test_old_key_still_decrypts_and_rotation_moves_to_first_key(settings):
    old_key = settings.FERNET_KEYS[0]
    ciphertext = crypto.encrypt(TOKEN)
    new_key = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new_key, old_key]
    assert crypto.decrypt(ciphertext) == TOKEN
    rotated = crypto.rotate(ciphertext)
    settings.FERNET_KEYS = [new_key]  # the old key is gone: only rotated data still reads
    assert crypto.decrypt(rotated) == TOKEN
    with pytest.raises(crypto.SecretDecryptionError):
        crypto.decrypt(ciphertext)


def test_malformed_or_missing_keys_fail_clearly(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.FERNET_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="FERNET_KEYS is empty"):
        crypto.encrypt("x")
    settings.FERNET_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured) as info:
        crypto.encrypt("x")
    assert "not-a-key" not in str(info.value)


@pytest.mark.django_db
def test_database_holds_no_plaintext_token(seller):
    row = SyncSettings.objects.get(user=seller)
    row.set_credentials(token=TOKEN, shared_secret=SECRET)
    row.save()
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM inventory_syncsettings WHERE user_id = %s", [seller.pk])
        raw = " ".join(str(v) for v in cur.fetchone())
    assert TOKEN not in raw and SECRET not in raw
    fresh = SyncSettings.objects.get(user=seller)
    assert fresh.get_token() == TOKEN and fresh.get_shared_secret() == SECRET


@pytest.mark.django_db
def test_rotate_command_reencrypts_every_row(seller, settings):
    row = SyncSettings.objects.get(user=seller)
    row.set_credentials(token=TOKEN, shared_secret=SECRET)
    row.save()
    old_keys = list(settings.FERNET_KEYS)
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), *old_keys]
    call_command("rotate_fernet_keys")
    settings.FERNET_KEYS = settings.FERNET_KEYS[:1]
    fresh = SyncSettings.objects.get(user=seller)
    assert fresh.get_token() == TOKEN and fresh.get_shared_secret() == SECRET


@pytest.mark.django_db
def test_admin_never_shows_the_token(admin_client, seller):
    row = SyncSettings.objects.get(user=seller)
    row.set_credentials(token=TOKEN, shared_secret=SECRET)
    row.save()
    for url in ("/admin/inventory/syncsettings/", f"/admin/inventory/syncsettings/{seller.pk}/change/"):
        body = admin_client.get(url).content.decode()
        assert TOKEN not in body and SECRET not in body
        assert row.token_encrypted not in body
