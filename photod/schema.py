"""Numbered SQL migrations, applied in order, each once, each in its own transaction."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from importlib import resources

from photod.errors import CatalogError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def available_migrations() -> list[tuple[str, str]]:
    """(name, sql) for every migration file, sorted by number."""
    files = [f for f in resources.files("photod.migrations").iterdir() if _NAME.match(f.name)]
    return [(f.name, f.read_text(encoding="utf-8")) for f in sorted(files, key=lambda f: f.name)]


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    return [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name")]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    done = set(applied_migrations(conn))
    known = {name for name, _ in available_migrations()}
    unknown = done - known
    if unknown:
        raise CatalogError(
            f"the catalog was migrated by a newer photod ({', '.join(sorted(unknown))})",
            "upgrade photod, or point PHOTOD_DATA_DIR at another data dir",
        )
    applied = []
    for name, sql in available_migrations():
        if name in done:
            continue
        _apply(conn, name, sql)
        applied.append(name)
        log.info("catalog migrated: %s", name)
    return applied


def _apply(conn: sqlite3.Connection, name: str, sql: str) -> None:
    # executescript commits any open transaction first, then runs the script as given: wrapping the script in
    # BEGIN/COMMIT makes the migration and its bookkeeping row one atomic step.
    stamp = f"INSERT INTO _migrations (name, applied_at) VALUES ('{name}', {time.time()});"
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\n{stamp}\nCOMMIT;")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise CatalogError(f"migration {name} failed: {exc}", "the catalog is unchanged; report this") from exc
