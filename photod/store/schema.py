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
    files = [f for f in resources.files("photod.store.migrations").iterdir() if _NAME.match(f.name)]
    return [(f.name, f.read_text(encoding="utf-8")) for f in sorted(files, key=lambda f: f.name)]


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    return [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name")]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet applied; return the names applied now.

    Safe when several processes open a new catalog at once (the daemon and a `photod status`): each
    migration takes the write lock first and checks again, inside it, whether another process applied it.
    """
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
        if name not in done and _apply(conn, name, sql):
            applied.append(name)
            log.info("catalog migrated: %s", name)
    return applied


def split_statements(sql: str) -> list[str]:
    """Split a script into statements; sqlite3.complete_statement understands triggers and strings."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(line.strip().startswith("--") or not line.strip() for line in current.splitlines()):
        raise CatalogError(f"incomplete SQL statement at the end of a migration: {current.strip()[:80]!r}")
    return statements


def _apply(conn: sqlite3.Connection, name: str, sql: str) -> bool:
    """Run one migration and record it, atomically. False if another process applied it first."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
            conn.execute("ROLLBACK")
            return False
        for statement in split_statements(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
        conn.execute("COMMIT")
        return True
    except (sqlite3.Error, CatalogError) as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise CatalogError(f"migration {name} failed: {exc}", "the catalog is unchanged; report this") from exc
