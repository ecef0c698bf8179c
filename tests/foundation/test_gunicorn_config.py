"""Production's gunicorn settings that cost or save CPU (brxsync/gunicorn.conf.py)."""
from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "brxsync" / "gunicorn.conf.py"


def _load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    for key in [k for k in os.environ if k.startswith(("GUNICORN_", "WEB_CONCURRENCY"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "unused")  # the module only defaults it
    return runpy.run_path(str(CONF))


def test_workers_are_recycled_rarely_and_never_together(monkeypatch):
    """A new worker costs ~1.2 s of CPU and a webhook delivery ~1.5 ms: recycling every 2,000
    requests (the old default) cost 18–21 % of the webhook's throughput at saturation."""
    conf = _load(monkeypatch)
    assert conf["max_requests"] >= 20_000
    assert conf["max_requests_jitter"] >= conf["max_requests"] // 20  # staggered restarts


def test_recycling_can_be_tuned_or_turned_off(monkeypatch):
    assert _load(monkeypatch, GUNICORN_MAX_REQUESTS="0")["max_requests"] == 0
    assert _load(monkeypatch, GUNICORN_MAX_REQUESTS="8000")["max_requests"] == 8000


def test_workers_are_event_loops_with_a_bounded_number_of_requests(monkeypatch):
    """gevent by default (a request waiting on the database costs a greenlet switch, not a GIL
    hand-off: tests/observability/test_web_worker.py proves the worker keeps serving meanwhile);
    never preloaded, since gevent must patch before psycopg is imported."""
    conf = _load(monkeypatch)
    assert conf["worker_class"] == "gevent"
    assert 16 <= conf["worker_connections"] <= 200
    assert not conf.get("preload_app", False)


def test_threads_can_be_brought_back(monkeypatch):
    conf = _load(monkeypatch, GUNICORN_WORKER_CLASS="gthread", GUNICORN_THREADS="8", GUNICORN_WORKER_CONNECTIONS="50")
    assert (conf["worker_class"], conf["threads"], conf["worker_connections"]) == ("gthread", 8, 50)
