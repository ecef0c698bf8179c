"""`make run`'s embedded default really comes up: SQLite, embedded Redis, the sandbox, web + worker +
beat, and a demo seller whose CardTrader stock is imported."""
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

from brxsync.localrun import DEMO_PRODUCTS, DEMO_SELLER

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_embedded_stack_comes_up_ready_and_prints_a_staff_login(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BLUEPRINT_", "REDIS_URL",
                                                                      "CELERY_BROKER", "DJANGO_SETTINGS", "FERNET",
                                                                      "SECRET_KEY"))}
    env.update({"PORT": str(port), "BRXSYNC_VAR_DIR": str(tmp_path)})
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "brxsync.localrun"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        body, deadline = None, time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=3)
                body = response.json()
                if response.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        assert body is not None and body["status"] == "ok", (body, log.read_text()[-3000:])
        text = log.read_text()
        login = re.search(r"staff login: admin / (\S+)", text)
        assert login, text[-2000:]
        db = sqlite3.connect(tmp_path / "brxsync.sqlite3")
        try:
            (items, mapped), = db.execute(
                "SELECT COUNT(*), COUNT(print_id) FROM inventory_inventoryitem WHERE seller_id = ?",
                [DEMO_SELLER.replace("-", "")],
            )
        finally:
            db.close()
        assert items == DEMO_PRODUCTS and 0 < mapped < items, (items, mapped, text[-2000:])
        session = requests.Session()
        page = session.get(f"http://127.0.0.1:{port}/admin/login/", timeout=5)
        token = session.cookies["csrftoken"]
        done = session.post(f"http://127.0.0.1:{port}/admin/login/?next=/admin/", timeout=5,
                            data={"username": "admin", "password": login.group(1), "csrfmiddlewaretoken": token},
                            headers={"Referer": page.url})
        assert done.status_code == 200 and "Log out" in done.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
