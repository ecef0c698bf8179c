"""Who is calling: a seller (Ebartex JWT) or an internal service (API key).

Both classes answer ``None`` for a request that does not use their scheme (so the other can
try) and raise ``AuthenticationFailed`` for one that uses it badly: a malformed header is an
error, not an anonymous request. ``request.user`` is then the seller's ``User`` or a
``ServicePrincipal``; ``caller_id`` gives both a stable string identity for the per-caller
scopes of throttling and idempotency.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from brxsync.api.models import ApiKey, hash_api_key

# last_used_at is written at most this often per key, so a busy service does not turn every
# request into an UPDATE of the same row.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class ServicePrincipal:
    """``request.user`` for an API-key caller: authenticated, staff of nothing, any seller."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    is_service = True

    @property
    def pk(self) -> None:  # never mistaken for a seller id
        return None

    def __str__(self) -> str:
        return f"service {self.api_key.name}"


def is_service(user: Any) -> bool:
    return bool(getattr(user, "is_service", False))


def caller_id(user: Any) -> str:
    """A stable identity for per-caller scopes (throttles, idempotency keys)."""
    if is_service(user):
        return f"apikey:{user.api_key.pk}"
    return f"seller:{user.pk}"


def _split_header(request: Request, scheme: str) -> str | None:
    """The credential after ``scheme``, None if another scheme is used; malformed → 401."""
    header = get_authorization_header(request)
    if not header:
        return None
    try:
        parts = header.decode("ascii").split()
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("The Authorization header is not ASCII.", code="malformed_credentials")
    if not parts or parts[0].lower() != scheme.lower():
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed(
            f"The Authorization header must be '{scheme} <credential>'.", code="malformed_credentials"
        )
    return parts[1]


class JWTAuthentication(BaseAuthentication):
    """``Authorization: Bearer <jwt>`` from Ebartex's auth service.

    RS256 only, against ``JWT_PUBLIC_KEY``: ``algorithms`` is fixed, so a token "signed" with
    HS256 using the public key as the HMAC secret (algorithm confusion) is refused. ``exp``,
    ``iat``, ``iss``, ``aud`` and ``sub`` are required, ``nbf`` is honoured when present, all with
    ``JWT_LEEWAY_SECONDS`` of clock skew. Ebartex also puts ``type`` (refresh tokens must not
    work here) and ``mfa_verified`` in its tokens. The first valid token of a seller creates
    their user and sync settings, since Ebartex, not this service, registers sellers.
    """

    scheme = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, dict] | None:
        token = _split_header(request, self.scheme)
        if token is None:
            return None
        claims = self.decode(token)
        return self.seller_for(claims), claims

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="brxsync"'

    @staticmethod
    def decode(token: str) -> dict[str, Any]:
        if not settings.JWT_PUBLIC_KEY:
            raise exceptions.AuthenticationFailed("Seller tokens are not accepted: no JWT_PUBLIC_KEY.",
                                                  code="jwt_not_configured")
        try:
            claims = jwt.decode(
                token,
                key=settings.JWT_PUBLIC_KEY,
                algorithms=["RS256"],
                audience=settings.JWT_AUDIENCE,
                issuer=settings.JWT_ISSUER,
                leeway=settings.JWT_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise exceptions.AuthenticationFailed("The token has expired.", code="token_expired")
        except jwt.ImmatureSignatureError:
            raise exceptions.AuthenticationFailed("The token is not valid yet.", code="token_not_yet_valid")
        except jwt.InvalidIssuerError:
            raise exceptions.AuthenticationFailed("The token was issued by someone else.", code="invalid_issuer")
        except jwt.InvalidAudienceError:
            raise exceptions.AuthenticationFailed("The token is not meant for this service.", code="invalid_audience")
        except jwt.MissingRequiredClaimError as exc:
            raise exceptions.AuthenticationFailed(f"The token lacks the '{exc.claim}' claim.", code="invalid_token")
        except jwt.InvalidTokenError:
            raise exceptions.AuthenticationFailed("The token is invalid.", code="invalid_token")
        if claims.get("type") != "access":
            raise exceptions.AuthenticationFailed("Only access tokens are accepted.", code="wrong_token_type")
        if settings.JWT_REQUIRE_MFA and claims.get("mfa_verified") is not True:
            raise exceptions.AuthenticationFailed("Multi-factor authentication is required.", code="mfa_required")
        return claims

    @staticmethod
    def seller_for(claims: dict[str, Any]) -> Any:
        from inventory.models import SyncSettings, User

        try:
            seller_id = uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise exceptions.AuthenticationFailed("The token's subject is not a seller id.", code="invalid_token")
        user = User.objects.filter(pk=seller_id).first()
        if user is None:
            try:
                with transaction.atomic():
                    user = User.objects.create(pk=seller_id, username=str(seller_id))
                    SyncSettings.objects.create(user=user)
            except IntegrityError:  # a concurrent first request created it
                user = User.objects.get(pk=seller_id)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("This seller is disabled.", code="seller_disabled")
        return user


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Api-Key <key>`` for internal services; the key may act for any seller."""

    scheme = "Api-Key"

    def authenticate(self, request: Request) -> tuple[ServicePrincipal, ApiKey] | None:
        raw_key = _split_header(request, self.scheme)
        if raw_key is None:
            return None
        api_key = ApiKey.objects.filter(hashed_key=hash_api_key(raw_key)).first()
        # Unknown and revoked keys answer alike: a caller learns nothing about which keys exist.
        if api_key is None or not api_key.is_active:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
        return ServicePrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Api-Key realm="brxsync"'
