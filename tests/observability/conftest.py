"""Fixtures: the project's log pipeline captured as JSON lines, real worker / gunicorn processes."""
from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]


class CapturedLogs:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def events(self, name: str) -> list[dict]:
        return [r for r in self.records() if r.get("event") == name]


@pytest.fixture
def json_logs() -> Iterator[CapturedLogs]:
    with capture_json_logs() as captured:
        yield captured


@contextmanager
def capture_json_logs() -> Iterator[CapturedLogs]:
    """A second root handler built exactly like the configured one (same formatter factory and
    filters), rendering JSON into memory, at DEBUG so nothing is left out of a scan.

    Enter it after starting an in-process Celery worker: the worker's Django fixup runs
    ``django.setup()`` again, and dictConfig replaces the root handlers."""
    from brxsync.observability.logs import make_formatter

    configured = logging.getLogger().handlers
    template = next(h for h in configured if any(type(f).__name__ == "RedactingFilter" for f in h.filters))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter("json"))
    for f in template.filters:
        handler.addFilter(f)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield CapturedLogs(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="brxsync.test_settings", PYTHONUNBUFFERED="1",
               LOG_FORMAT="json", LOG_LEVEL="INFO")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def serving_gunicorn(tmp_path, **env: str) -> tuple[subprocess.Popen, Path, int]:
    """gunicorn as production starts it (one worker), serving: (process, log path, port)."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "brxsync/gunicorn.conf.py", "brxsync.wsgi"], cwd=REPO,
        env=base_env(WEB_CONCURRENCY="1", GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_GRACEFUL_TIMEOUT="20",
                     PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"), **env),
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def up() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/health/live", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_until(up, 30, f"gunicorn to serve:\n{log.read_text()[-2000:]}")
    except AssertionError:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        raise
    return proc, log, port


class Worker:
    """A real ``celery -A brxsync worker`` on a queue of its own (the broker Redis is shared)."""

    def __init__(self, queue: str, log: Path, env: dict[str, str]) -> None:
        self.queue, self.log_path, self.env = queue, log, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "brxsync", "worker", "-Q", self.queue, "-c", "1",
             "-n", f"{self.queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--include", "tests.observability.probe", "-l", "INFO"],
            cwd=REPO, env=self.env, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while "ready" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        return self

    def lines(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


@pytest.fixture
def worker_factory(tmp_path) -> Iterator:
    started: list[Worker] = []

    def make(queue: str, **env: str) -> Worker:
        w = Worker(queue, tmp_path / f"worker-{len(started)}.log", base_env(**env)).start()
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


@pytest.fixture
def probe_queue(redis_client) -> Iterator[str]:
    """A queue name nobody else consumes; its list is deleted afterwards (never a FLUSHDB)."""
    name = f"obs-{uuid.uuid4().hex[:10]}"
    yield name
    redis_client.delete(name)


@pytest.fixture
def probe_urls(settings):
    settings.ROOT_URLCONF = "tests.observability.urls"
    return settings
