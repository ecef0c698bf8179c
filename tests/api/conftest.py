"""Fixtures for the API tests: a throwaway RSA key pair (generated now, never committed),
tokens signed with it, API keys, and clients carrying either."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rest_framework.test import APIClient

ISSUER = "https://auth.test.ebartex"
AUDIENCE = "brx-sync-test"


@pytest.fixture(scope="session")
def rsa_keys() -> dict[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "private": private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "public": private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }


@pytest.fixture(autouse=True)
def jwt_settings(settings, rsa_keys) -> Any:
    settings.JWT_PUBLIC_KEY = rsa_keys["public"]
    settings.JWT_ISSUER = ISSUER
    settings.JWT_AUDIENCE = AUDIENCE
    settings.JWT_REQUIRE_MFA = True
    settings.JWT_LEEWAY_SECONDS = 5
    return settings


def claims_for(seller_id: uuid.UUID | str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": str(seller_id), "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 300,
        "type": "access", "mfa_verified": True,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def make_token(rsa_keys) -> Callable[..., str]:
    def make(seller_id: uuid.UUID | str, **overrides: Any) -> str:
        return jwt.encode(claims_for(seller_id, **overrides), rsa_keys["private"], algorithm="RS256")

    return make


@pytest.fixture
def seller_client(make_token) -> Callable[[uuid.UUID], APIClient]:
    def client_for(seller_id: uuid.UUID) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(seller_id)}")
        return client

    return client_for


@pytest.fixture
def api_key(db) -> tuple[Any, str]:
    from brxsync.api.models import ApiKey

    return ApiKey.generate("test-service")


@pytest.fixture
def service_client(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")
    return client


@pytest.fixture
def make_operation() -> Callable[..., Any]:
    from syncops.models import OperationKind, OperationState, SyncOperation

    def make(seller: Any, **fields: Any) -> SyncOperation:
        fields.setdefault("kind", OperationKind.PUSH_UPDATE)
        fields.setdefault("state", OperationState.FAILED)
        return SyncOperation.objects.create(seller=seller, operation_key=f"test:{uuid.uuid4()}", **fields)

    return make


def assert_envelope(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the one error envelope, with ``status`` (and ``code`` if given)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    text = response.content.decode()
    assert "Traceback" not in text and "<html" not in text.lower()
    return body["error"]
