"""Settings for gunicorn subprocesses in these tests: the test settings plus the probe views."""
from brxsync.test_settings import *  # noqa: F403

ROOT_URLCONF = "tests.observability.urls"
