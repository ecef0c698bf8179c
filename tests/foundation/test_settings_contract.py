"""The configuration contract (DESIGN §8) and production checks."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = [
    "DATABASE_URL", "BLUEPRINT_DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CARDTRADER_API_BASE",
    "FERNET_KEYS", "SECRET_KEY", "RATE_LIMIT_REQUESTS", "RATE_LIMIT_WINDOW_SECONDS", "LOG_LEVEL", "SENTRY_DSN",
    "JWT_PUBLIC_KEY", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_REQUIRE_MFA", "PUBLIC_BASE_URL",
]


# Set by brxsync.test_settings in this process; a production-like child must not inherit them.
TEST_ONLY = {"DJANGO_SETTINGS_MODULE", "DB_POOL", "LOG_FORMAT", "ALLOWED_HOSTS"}


def _run_settings(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in {*TEST_ONLY, *CONTRACT}}
    base.update({"DJANGO_SETTINGS_MODULE": "brxsync.settings", "ENV_FILE": "/nonexistent", **env})
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_env_example_documents_every_contract_name_with_a_comment():
    text = (ROOT / ".env.example").read_text()
    for name in CONTRACT:
        match = re.search(rf"((?:#.*\n)+){name}=", text)
        assert match, f"{name} missing or undocumented in .env.example"


def test_every_contract_name_is_read_from_the_environment():
    out = _run_settings(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CARDTRADER_API_BASE, s.RATE_LIMIT_REQUESTS, s.RATE_LIMIT_WINDOW_SECONDS, s.JWT_ISSUER, "
        "s.JWT_AUDIENCE, s.JWT_REQUIRE_MFA, s.PUBLIC_BASE_URL, s.CELERY_BROKER_URL, "
        "s.DATABASES['default']['NAME'], s.DATABASES['blueprints']['ENGINE'])",
        SECRET_KEY="x" * 50, CARDTRADER_API_BASE="http://ct.example/api/v2/", RATE_LIMIT_REQUESTS="150",
        RATE_LIMIT_WINDOW_SECONDS="5", JWT_ISSUER="iss", JWT_AUDIENCE="aud", JWT_REQUIRE_MFA="false",
        PUBLIC_BASE_URL="https://sync.example/", REDIS_URL="redis://r:6379/2",
        DATABASE_URL="postgres://u:p@db:5432/brx", BLUEPRINT_DATABASE_URL="mysql://u:p@cat:3306/eb",
    )
    assert out.split() == [
        "http://ct.example/api/v2", "150", "5.0", "iss", "aud", "False", "https://sync.example",
        "redis://r:6379/2", "brx", "django.db.backends.mysql",
    ]


def test_postgres_connections_are_pooled_and_sized_from_settings():
    out = _run_settings(
        "import django; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; print(d['OPTIONS']['pool'], d['CONN_MAX_AGE'])",
        SECRET_KEY="x" * 50, DATABASE_URL="postgres://u:p@db:5432/brx", DB_POOL_MAX_SIZE="33",
    )
    assert "'max_size': 33" in out and out.strip().endswith(" 0")


def test_production_refuses_to_start_without_a_secret_key():
    base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG"}}
    base.update({"DJANGO_SETTINGS_MODULE": "brxsync.settings", "ENV_FILE": "/nonexistent"})
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=base,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_check_deploy_reports_no_errors_with_production_settings():
    base = {k: v for k, v in os.environ.items() if k not in {*TEST_ONLY, *CONTRACT}}
    base.update({
        "DJANGO_SETTINGS_MODULE": "brxsync.settings", "ENV_FILE": "/nonexistent",
        "SECRET_KEY": "p" * 20 + "-production-like-secret-key-with-enough-entropy-1234567890",
        "SECURE_SSL_REDIRECT": "true", "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true", "SECURE_HSTS_PRELOAD": "true",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    })
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
