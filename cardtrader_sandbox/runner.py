"""Start and stop the sandbox as a subprocess (used by the pytest plugin and the benchmarks)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from .control import SandboxControl

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunningSandbox:
    base_url: str
    api_base: str
    control: SandboxControl
    process: subprocess.Popen


def start_sandbox(*, startup_timeout: float = 20.0) -> RunningSandbox:
    """Run ``python -m cardtrader_sandbox --port 0`` and read the bound port from its first line
    (no free-port race), then wait until the control API answers."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "cardtrader_sandbox", "--port", "0"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=None, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening on http://" not in line:
        proc.kill()
        proc.wait()
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
            proc.wait()
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
