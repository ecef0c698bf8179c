"""Run one import in a separate process (the SIGKILL test kills it halfway).

Usage: python tests/imports/import_child.py <operation_id>. Settings come from the environment
(the parent points DATABASE_URL at its test database and CARDTRADER_API_BASE at its sandbox);
CHILD_* variables tune the run so it is slow enough to be killed mid-way and its lease short.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

settings.IMPORT_CHUNK_SIZE = int(os.environ["CHILD_CHUNK_SIZE"])
settings.SYNC_LEASE_SECONDS = float(os.environ["CHILD_LEASE_SECONDS"])
settings.CATALOGUE_MAPPING_CACHE_PREFIX = os.environ["CHILD_CACHE_PREFIX"]
settings.RATE_LIMIT_KEY_PREFIX = os.environ["CHILD_RL_PREFIX"]

from syncops.services.imports import import_run  # noqa: E402

print(import_run(int(sys.argv[1])), flush=True)
