"""Settings for the test suite: real PostgreSQL, MariaDB and Redis on their standard ports.

Values below are defaults only; the environment still wins, so CI can point elsewhere.
The Fernet keys here are test-only constants, never used outside the suite.
"""
import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brxsync")
os.environ.setdefault("BLUEPRINT_DATABASE_URL", "mysql://root@127.0.0.1:3306/test_brxsync_catalogue")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault(
    "FERNET_KEYS",
    "dGVzdC1vbmx5LWZlcm5ldC1rZXktMDAwMDAwMDAwMDA=,dGVzdC1vbmx5LWZlcm5ldC1rZXktMTExMTExMTExMTE=",
)
os.environ.setdefault("DB_POOL", "false")
os.environ.setdefault("LOG_FORMAT", "console")
os.environ.setdefault("ALLOWED_HOSTS", "*")

from brxsync.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Each pytest-xdist worker gets its own cache namespace on the shared Redis.
CACHES["default"]["KEY_PREFIX"] = f"brxtest-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"  # noqa: F405
