"""`photod search`: one entry point for filename, text and example-photo queries, with filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from photod.config import Config
from photod.errors import NoModelError


def find(cfg: Config, *, text: str | None = None, name: str | None = None, like: str | None = None,
         after: str | None = None, before: str | None = None, root: str | None = None,
         camera: str | None = None, folder: str | None = None, k: int = 20) -> tuple[list[dict], str | None]:
    """Results as plain dicts (id, path, score, ...) and an optional note for the person."""
    from photod.cli import open_catalog

    filters = dict(after=after, before=before, camera=camera, folder=folder)
    note = None
    if text or like:
        try:
            return _semantic(cfg, text=text, like=like, name=name, root=root, k=k, **filters), None
        except NoModelError as exc:
            if like:
                raise
            note = f"{exc.message}; showing filename matches instead.\n  hint: {exc.hint}"
            name = " ".join(x for x in (name, text) if x)
    with open_catalog(cfg) as cat:
        root_id = cat.find_root(root).id if root else None
        rows = cat.search_name(name, root_id=root_id, limit=k, **filters)
    return [as_result(r, None) for r in rows], note


def _semantic(cfg: Config, **query: Any) -> list[dict]:
    from photod.search import Searcher

    with Searcher.from_config(cfg) as searcher:
        return [r.to_json() for r in searcher.search(**query)]


def as_result(row: dict, score: float | None) -> dict:
    return {
        "id": row["id"],
        "path": str(Path(row["root_path"]) / row["rel_path"]),
        "score": score,
        "filename": row["filename"],
        "folder": row["folder"],
        "root": row["root_label"],
        "online": bool(row["root_online"]) and row["state"] != "offline",
        "state": row["state"],
        "taken_at": row.get("taken_at"),
        "camera": " ".join(x for x in (row.get("camera_make"), row.get("camera_model")) if x) or None,
        "width": row.get("width"),
        "height": row.get("height"),
    }
