"""Secrets at rest: Fernet with several keys (the first encrypts, all decrypt).

Tokens are encrypted before they reach a model field and decrypted only where a CardTrader
call needs them, so a plaintext token never sits in the database, a form or a log line.
"""
from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from brxsync.observability.redaction import register_secret


class SecretDecryptionError(Exception):
    """The stored ciphertext matches none of the configured keys."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FERNET_KEYS is empty: set at least one key (see .env.example)")
    try:
        return MultiFernet([Fernet(k.strip().encode()) for k in keys])
    except ValueError as exc:  # never echo the key itself
        raise ImproperlyConfigured("FERNET_KEYS holds a malformed key (need 32 url-safe base64 bytes)") from exc


def _current() -> MultiFernet:
    return _fernet(tuple(k for k in settings.FERNET_KEYS if k.strip()))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt, and teach this process's log redaction the plaintext: a shared secret has no
    recognisable shape, so once decrypted it must be cut from any log line it might reach."""
    try:
        plaintext = _current().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError("stored secret cannot be decrypted with any configured key") from exc
    register_secret(plaintext)
    return plaintext


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the first key (no-op in meaning, new ciphertext)."""
    try:
        return _current().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError("stored secret cannot be decrypted with any configured key") from exc


def generate_key() -> str:
    return Fernet.generate_key().decode()
