"""Per-request cost of the API layer: authentication, seller scope, throttles, idempotency.

In-process (Django's test ``Client``, no network) against the real PostgreSQL (database
``brxsync_apibench``, created and migrated if absent) and the real Redis (throttle counters).
Modes, each ``--requests`` times, timed request by request:

- ``health`` baseline: ``GET /health/live`` (no auth, no database): the framework floor.
- ``status_apikey``   ``GET /api/v1/sellers/<id>/status`` with ``Api-Key`` (SHA-256 lookup).
- ``status_jwt``      the same with a seller's RS256 JWT (signature check + user lookup).
- ``retry_nokey``     ``POST /api/v1/operations/<id>/retry`` without ``Idempotency-Key``.
- ``retry_key``       the same with a fresh key per request (claim + stored answer).
- ``retry_replay``    the same key again: the stored answer, nothing runs.

Run:  .venv/bin/python bench/api_overhead.py [--requests 300]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brxsync_apibench")
os.environ["API_THROTTLE_SELLER"] = "1000000/min"
os.environ["API_THROTTLE_SERVICE"] = "1000000/min"
os.environ.setdefault("CACHE_KEY_PREFIX", f"apibench-{uuid.uuid4().hex[:6]}")


def _ensure_database() -> None:
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        if not pg.execute("SELECT 1 FROM pg_database WHERE datname = 'brxsync_apibench'").fetchone():
            pg.execute("CREATE DATABASE brxsync_apibench")


def _keys() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
        private.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    n = parser.parse_args().requests

    _ensure_database()
    private_pem, public_pem = _keys()
    os.environ["JWT_PUBLIC_KEY"] = public_pem
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    import jwt

    from brxsync.api.models import ApiKey
    from inventory.models import SyncSettings, User
    from syncops.models import SyncOperation

    seller = User.objects.create(username=f"bench-{uuid.uuid4().hex[:8]}")
    SyncSettings.objects.create(user=seller)
    _, raw_key = ApiKey.generate("bench")
    now = int(time.time())
    token = jwt.encode({"sub": str(seller.pk), "iss": settings.JWT_ISSUER, "aud": settings.JWT_AUDIENCE,
                        "iat": now, "exp": now + 3600, "type": "access", "mfa_verified": True},
                       private_pem, algorithm="RS256")
    op = SyncOperation.objects.create(seller=seller, kind="reconcile", state="failed",
                                      operation_key=f"bench:{uuid.uuid4()}")
    client = Client()
    api_key = {"HTTP_AUTHORIZATION": f"Api-Key {raw_key}"}
    status_url = f"/api/v1/sellers/{seller.pk}/status"
    retry_url = f"/api/v1/operations/{op.pk}/retry"
    replay_key = f"bench-replay-{uuid.uuid4()}"

    def reset() -> None:
        SyncOperation.objects.filter(pk=op.pk).update(state="failed", attempt_log=[])

    modes = {
        "health": (None, lambda: client.get("/health/live"), 200),
        "status_apikey": (None, lambda: client.get(status_url, **api_key), 200),
        "status_jwt": (None, lambda: client.get(status_url, HTTP_AUTHORIZATION=f"Bearer {token}"), 200),
        "retry_nokey": (reset, lambda: client.post(retry_url, **api_key), 202),
        "retry_key": (reset, lambda: client.post(retry_url, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **api_key), 202),
        "retry_replay": (reset, lambda: client.post(retry_url, HTTP_IDEMPOTENCY_KEY=replay_key, **api_key), 202),
    }
    results: dict[str, list[float]] = {}
    for name, (before, call, expected) in modes.items():
        for _ in range(10):  # warm-up
            if before:
                before()
            call()
        timings = []
        for _ in range(n):
            if before:
                before()
            started = time.perf_counter()
            response = call()
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == expected, (name, response.status_code, response.content[:300])
        results[name] = timings

    print(f"API layer overhead, {n} requests per mode, in-process Client, PostgreSQL + Redis")
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    base = statistics.median(results["health"])
    print(f"{'mode':<14} {'median ms':>10} {'p95 ms':>8} {'vs health':>10}")
    for name, timings in results.items():
        med = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20)[18]
        print(f"{name:<14} {med:>10.2f} {p95:>8.2f} {med - base:>+9.2f}")
    print("command: .venv/bin/python bench/api_overhead.py --requests", n)
    SyncOperation.objects.filter(seller=seller).delete()
    User.objects.filter(pk=seller.pk).delete()


if __name__ == "__main__":
    main()
