"""Creates the read-only catalogue's schema in MariaDB for tests, over its own connection.

The service never writes there (the router and the session refuse), so the suite builds the
Ebartex print tables the way Ebartex's own tooling would: directly, outside Django.
"""
from __future__ import annotations

from collections.abc import Iterable

import MySQLdb
from django.conf import settings

TABLES = ("cards_prints", "op_prints", "pk_prints", "sealed_products")


def _admin_connection(db: str | None = None) -> MySQLdb.Connection:
    cfg = settings.DATABASES["blueprints"]
    kwargs = {
        "host": cfg.get("HOST") or "127.0.0.1",
        "port": int(cfg.get("PORT") or 3306),
        "user": cfg.get("USER") or "root",
        "passwd": cfg.get("PASSWORD") or "",
        "connect_timeout": 5,
        "charset": "utf8mb4",
        "autocommit": True,
    }
    if db:
        kwargs["db"] = db
    return MySQLdb.connect(**kwargs)


def create_catalogue_schema() -> str:
    name = settings.DATABASES["blueprints"]["NAME"]
    conn = _admin_connection()
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{name}`")
        for table in TABLES:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS `{table}` ("
                " id BIGINT PRIMARY KEY,"
                " cardtrader_id INT NULL,"
                " name VARCHAR(255) NOT NULL DEFAULT '',"
                " KEY idx_cardtrader_id (cardtrader_id)) ENGINE=InnoDB"
            )
    finally:
        conn.close()
    return name


def load_prints(table: str, rows: Iterable[tuple[int, int | None, str]], *, replace: bool = True) -> None:
    """Fill a print table with (id, cardtrader_id, name) rows, over the admin connection."""
    assert table in TABLES
    conn = _admin_connection(settings.DATABASES["blueprints"]["NAME"])
    try:
        cur = conn.cursor()
        if replace:
            cur.execute(f"DELETE FROM `{table}`")
        cur.executemany(
            f"INSERT INTO `{table}` (id, cardtrader_id, name) VALUES (%s, %s, %s)", list(rows)
        )
    finally:
        conn.close()
