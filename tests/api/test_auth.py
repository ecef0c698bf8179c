"""The auth matrix: who gets in, who is refused and how (DESIGN §8; issue 5)."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.models import SyncSettings, User
from tests.api.conftest import assert_envelope, claims_for

pytestmark = pytest.mark.django_db


def status_url(seller_id) -> str:
    return f"/api/v1/sellers/{seller_id}/status"


def get_with(auth: str | None, url: str):
    client = APIClient()
    if auth is not None:
        client.credentials(HTTP_AUTHORIZATION=auth)
    return client.get(url)


def test_no_credentials_is_401_with_a_challenge(seller):
    response = get_with(None, status_url(seller.pk))
    assert_envelope(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Api-Key", "Api-Key x y", "Bearer \u00e9t\u00e9"])
def test_malformed_header_is_401(seller, header):
    response = APIClient().get(status_url(seller.pk), HTTP_AUTHORIZATION=header.encode("utf-8").decode("latin-1"))
    error = assert_envelope(response, 401)
    assert error["code"] in {"malformed_credentials", "invalid_token"}


def test_unknown_scheme_is_401_not_authenticated(seller):
    assert_envelope(get_with("Basic dXNlcjpwYXNz", status_url(seller.pk)), 401, "not_authenticated")


def test_garbage_bearer_token_is_401(seller):
    assert_envelope(get_with("Bearer not.a.jwt", status_url(seller.pk)), 401, "invalid_token")


def test_valid_token_creates_the_seller_and_their_settings(make_token):
    seller_id = uuid.uuid4()
    assert not User.objects.filter(pk=seller_id).exists()
    response = get_with(f"Bearer {make_token(seller_id)}", status_url(seller_id))
    assert response.status_code == 200, response.content
    assert response.json()["seller_id"] == str(seller_id)
    user = User.objects.get(pk=seller_id)
    assert user.username == str(seller_id) and not user.is_staff
    assert SyncSettings.objects.filter(user=user).exists()
    # A second request reuses them.
    assert get_with(f"Bearer {make_token(seller_id)}", status_url(seller_id)).status_code == 200
    assert User.objects.filter(pk=seller_id).count() == 1


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"exp": int(time.time()) - 60, "iat": int(time.time()) - 400}, "token_expired"),
        ({"nbf": int(time.time()) + 120}, "token_not_yet_valid"),
        ({"iss": "https://evil.example"}, "invalid_issuer"),
        ({"aud": "another-service"}, "invalid_audience"),
        ({"type": "refresh"}, "wrong_token_type"),
        ({"type": None}, "wrong_token_type"),
        ({"mfa_verified": False}, "mfa_required"),
        ({"mfa_verified": None}, "mfa_required"),
        ({"mfa_verified": "true"}, "mfa_required"),
        ({"exp": None}, "invalid_token"),
        ({"sub": "not-a-uuid"}, "invalid_token"),
    ],
    ids=["expired", "not-yet-valid", "wrong-issuer", "wrong-audience", "refresh-token", "no-type",
         "mfa-false", "mfa-missing", "mfa-string", "no-exp", "sub-not-uuid"],
)
def test_bad_tokens_are_refused(make_token, overrides, code):
    seller_id = uuid.uuid4()
    response = get_with(f"Bearer {make_token(seller_id, **overrides)}", status_url(seller_id))
    assert_envelope(response, 401, code)
    assert not User.objects.filter(pk=seller_id).exists()  # a refused token creates nothing


def test_expiry_within_leeway_is_accepted(make_token):
    seller_id = uuid.uuid4()
    token = make_token(seller_id, exp=int(time.time()) - 2, iat=int(time.time()) - 100)
    assert get_with(f"Bearer {token}", status_url(seller_id)).status_code == 200


def test_mfa_not_required_when_turned_off(settings, make_token):
    settings.JWT_REQUIRE_MFA = False
    seller_id = uuid.uuid4()
    token = make_token(seller_id, mfa_verified=False)
    assert get_with(f"Bearer {token}", status_url(seller_id)).status_code == 200


def test_hs256_token_signed_with_the_public_key_is_refused(rsa_keys):
    """Algorithm confusion: a verifier that let the token pick its algorithm would accept this."""
    import hashlib
    import hmac
    import json
    from base64 import urlsafe_b64encode

    def b64(data: bytes) -> bytes:
        return urlsafe_b64encode(data).rstrip(b"=")

    seller_id = uuid.uuid4()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims_for(seller_id)).encode())
    signature = b64(hmac.new(rsa_keys["public"].encode(), header + b"." + payload, hashlib.sha256).digest())
    token = (header + b"." + payload + b"." + signature).decode()
    # The forged token is well-formed and correctly HMAC-signed with the public key...
    assert jwt.decode(token, rsa_keys["public"].encode(), algorithms=["HS256"],
                      audience=claims_for(seller_id)["aud"], options={"verify_signature": False})
    response = get_with(f"Bearer {token}", status_url(seller_id))
    assert_envelope(response, 401, "invalid_token")
    assert not User.objects.filter(pk=seller_id).exists()


def test_token_signed_by_another_key_is_refused():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    seller_id = uuid.uuid4()
    token = jwt.encode(claims_for(seller_id), other, algorithm="RS256")
    assert_envelope(get_with(f"Bearer {token}", status_url(seller_id)), 401, "invalid_token")


def test_no_public_key_configured_refuses_every_token(settings, make_token):
    settings.JWT_PUBLIC_KEY = ""
    seller_id = uuid.uuid4()
    assert_envelope(get_with(f"Bearer {make_token(seller_id)}", status_url(seller_id)), 401, "jwt_not_configured")


def test_disabled_seller_is_refused(make_token, seller):
    seller.is_active = False
    seller.save()
    assert_envelope(get_with(f"Bearer {make_token(seller.pk)}", status_url(seller.pk)), 401, "seller_disabled")


def test_seller_a_on_seller_b_is_404_like_a_missing_seller(make_token, make_operation, seller):
    seller_a = uuid.uuid4()
    token = f"Bearer {make_token(seller_a)}"
    operation = make_operation(seller)
    for url in (status_url(seller.pk), f"/api/v1/sellers/{seller.pk}/operations",
                f"/api/v1/operations/{operation.pk}"):
        other = get_with(token, url)
        assert_envelope(other, 404, "not_found")
    missing = get_with(token, status_url(uuid.uuid4()))
    assert missing.json() == get_with(token, status_url(seller.pk)).json()  # indistinguishable
    retry = APIClient()
    retry.credentials(HTTP_AUTHORIZATION=token)
    assert_envelope(retry.post(f"/api/v1/operations/{operation.pk}/retry"), 404, "not_found")
    operation.refresh_from_db()
    assert operation.state == "failed"  # and nothing happened to B's operation


def test_api_key_acts_for_any_seller(service_client, make_operation, seller, api_key):
    other = User.objects.create(username=f"s-{uuid.uuid4().hex[:8]}")
    for target in (seller, other):
        response = service_client.get(status_url(target.pk))
        assert response.status_code == 200, response.content
        assert response.json()["seller_id"] == str(target.pk)
    operation = make_operation(other)
    assert service_client.get(f"/api/v1/operations/{operation.pk}").status_code == 200
    # ...but an unknown seller is still a 404, and no seller is created for it.
    unknown = uuid.uuid4()
    assert_envelope(service_client.get(status_url(unknown)), 404, "not_found")
    assert not User.objects.filter(pk=unknown).exists()
    api_key[0].refresh_from_db()
    assert api_key[0].last_used_at is not None


def test_revoked_api_key_is_refused(service_client, api_key, seller):
    assert service_client.get(status_url(seller.pk)).status_code == 200
    api_key[0].revoke()
    assert_envelope(service_client.get(status_url(seller.pk)), 401, "invalid_api_key")


def test_unknown_api_key_is_refused(seller):
    assert_envelope(get_with("Api-Key brx_doesnotexist", status_url(seller.pk)), 401, "invalid_api_key")


def test_staff_session_does_not_reach_the_api(client, seller):
    staff = User.objects.create_superuser(username=f"staff-{uuid.uuid4().hex[:6]}", password="pw")
    client.force_login(staff)
    assert_envelope(client.get(status_url(seller.pk)), 401, "not_authenticated")


def test_concurrent_first_requests_create_one_seller(make_token, transactional_db, live_server):
    """Two first tokens at once: both succeed, one user row (the IntegrityError path)."""
    import threading

    import requests

    seller_id = uuid.uuid4()
    token = make_token(seller_id)
    barrier = threading.Barrier(4)
    results: list[int] = []

    def call() -> None:
        barrier.wait()
        r = requests.get(live_server.url + status_url(seller_id), headers={"Authorization": f"Bearer {token}"},
                         timeout=10)
        results.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert User.objects.filter(pk=seller_id).count() == 1
    assert SyncSettings.objects.filter(user_id=seller_id).count() == 1


def test_last_used_is_written_at_most_once_a_minute(service_client, api_key, seller):
    from brxsync.api.models import ApiKey

    service_client.get(status_url(seller.pk))
    first = ApiKey.objects.get(pk=api_key[0].pk).last_used_at
    service_client.get(status_url(seller.pk))
    assert ApiKey.objects.get(pk=api_key[0].pk).last_used_at == first
    ApiKey.objects.filter(pk=api_key[0].pk).update(last_used_at=timezone.now() - timedelta(minutes=5))
    service_client.get(status_url(seller.pk))
    assert ApiKey.objects.get(pk=api_key[0].pk).last_used_at > first
