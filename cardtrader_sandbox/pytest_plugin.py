"""Pytest fixtures: one sandbox subprocess per test session (per xdist worker), a fresh account
per test, and Django settings pointed at the sandbox. Registered in the root conftest.py."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from .control import Account, SandboxControl

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunningSandbox:
    base_url: str
    api_base: str
    control: SandboxControl
    process: subprocess.Popen


def start_sandbox(*, startup_timeout: float = 20.0) -> RunningSandbox:
    """Start ``python -m cardtrader_sandbox --port 0`` and read the bound port from its first line
    (no free-port race), then wait until the control API answers."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "cardtrader_sandbox", "--port", "0"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=None, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening on http://" not in line:
        proc.kill()
        raise RuntimeError(f"sandbox did not start: {line!r}")
    base_url = line.split("listening on ", 1)[1].split()[0]
    deadline = time.monotonic() + startup_timeout
    while True:
        try:
            if requests.get(f"{base_url}/_sandbox/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("sandbox did not answer in time")
        time.sleep(0.05)
    return RunningSandbox(base_url, f"{base_url}/api/v2", SandboxControl(base_url), proc)


def stop_sandbox(sandbox: RunningSandbox) -> None:
    sandbox.control.close()
    sandbox.process.terminate()
    try:
        sandbox.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sandbox.process.kill()
        sandbox.process.wait(timeout=5)
    if sandbox.process.stdout:
        sandbox.process.stdout.close()


@pytest.fixture(scope="session")
def cardtrader_sandbox() -> Iterator[RunningSandbox]:
    sandbox = start_sandbox()
    try:
        yield sandbox
    finally:
        stop_sandbox(sandbox)


@pytest.fixture
def sandbox_account(cardtrader_sandbox: RunningSandbox) -> Account:
    return cardtrader_sandbox.control.create_account(name="Test Shop")


@pytest.fixture
def sandbox_settings(cardtrader_sandbox: RunningSandbox, settings):
    settings.CARDTRADER_API_BASE = cardtrader_sandbox.api_base
    return settings
