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

# Each test session gets a broker namespace of its own on the shared Redis: tasks enqueued by
# one run (or by another engineer's run) are never consumed by another run's workers. Worker
# subprocesses inherit the environment variable, so they join their session's namespace.
_BROKER_NS = os.environ.setdefault("BRX_TEST_BROKER_NAMESPACE", f"brxtest-{os.getpid()}-{os.urandom(3).hex()}")
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": f"{_BROKER_NS}:"}  # noqa: F405

# Tests assert on whole traces: record every one (production samples, see settings.py).
OTEL_TRACES_SAMPLE_RATIO = env.float("OTEL_TRACES_SAMPLE_RATIO", default=1.0)  # noqa: F405

# The sandbox runs a bulk job in 2 s at most (1 s pending + 1 s running by default, 0.4 s with
# fast_jobs): newer edits behind an unanswered bulk call need not wait production's minute here.
PUSH_UNRECORDED_JOB_SECONDS = env.float("PUSH_UNRECORDED_JOB_SECONDS", default=3.0)  # noqa: F405
