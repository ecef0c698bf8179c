"""Fixtures for the push tests: items, connected sellers on the sandbox, Celery workers."""
from __future__ import annotations

import itertools

import pytest

_product_ids = itertools.count(900_000_000)


@pytest.fixture
def make_item():
    def make(seller, **fields):
        from inventory.models import InventoryItem

        defaults = {"product_id": next(_product_ids), "blueprint_id": 6, "game_id": 1, "quantity": 5,
                    "price_cents": 250, "properties": {"condition": "Near Mint", "mtg_foil": False}}
        defaults.update(fields)
        return InventoryItem.objects.create(seller=seller, **defaults)

    return make


# ------------------------------------------------------------------ real Celery workers

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# The session's own broker (brxsync/test_settings.py gives every pytest session a key namespace
# on the shared Redis, inherited by the worker subprocesses): no other run's worker can take our
# tasks, and this process's Celery producer is never re-pointed, so later tests keep publishing
# where their own workers listen.


class Workers:
    """``celery -A brxsync worker`` subprocesses on the pytest test database and the sandbox."""

    def __init__(self, sandbox, db_name: str, *, concurrency: int = 3, extra_env: dict | None = None) -> None:
        self.sandbox = sandbox
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="brxsync.test_settings",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db_name}",
            CARDTRADER_API_BASE=sandbox.api_base,
            CARDTRADER_WRITE_TIMEOUT="2",
            PYTHONUNBUFFERED="1",
            **(extra_env or {}),
        )
        self.concurrency = concurrency
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self) -> subprocess.Popen:
        name = f"push-{uuid.uuid4().hex[:8]}@%h"
        log = Path(f"/tmp/push-worker-{uuid.uuid4().hex[:8]}.log")
        self.logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "brxsync", "worker", "-Q", "high-priority,default",
             "-c", str(self.concurrency), "-n", name, "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "INFO"],
            cwd=REPO, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 30
        while "ready" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the whole worker (main process and pool children): a hard crash."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def terminate(self, proc: subprocess.Popen, *, timeout: float = 60.0) -> int:
        """SIGTERM to the worker's MAIN process only (what systemd / Kubernetes / docker stop
        send): Celery's warm shutdown stops consuming and lets running tasks finish. Returns the
        exit code; raises if the worker does not drain within ``timeout``."""
        os.kill(proc.pid, signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Teardown: the test has asserted what it wanted; a graceful drain would only cost
        seconds per test (SIGTERM is tested on its own)."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def push_workers(transactional_db, cardtrader_sandbox, sandbox_settings, settings):
    from django.db import connection

    from brxsync.celery import app

    with app.connection_for_write() as conn:  # tasks earlier tests published and nobody consumed
        for queue in ("high-priority", "default"):
            conn.default_channel.queue_purge(queue)
    workers = Workers(cardtrader_sandbox, connection.settings_dict["NAME"])
    try:
        yield workers
    finally:
        workers.stop()
        for log in workers.logs:
            log.unlink(missing_ok=True)
