"""`photod search`: one entry point for filename, text and example-photo queries, with filters."""

from __future__ import annotations

from typing import Any

from photod.catalog import open_catalog
from photod.config import Config
from photod.errors import NoModelError
from photod.results import Result


def find(cfg: Config, *, text: str | None = None, name: str | None = None, like: str | None = None,
         after: str | None = None, before: str | None = None, root: str | None = None,
         camera: str | None = None, folder: str | None = None, k: int = 20) -> tuple[list[dict], str | None]:
    """Results as plain dicts (id, path, score, ...) and an optional note for the person."""
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
    return [Result.from_row(r, None).to_json() for r in rows], note


def _semantic(cfg: Config, **query: Any) -> list[dict]:
    from photod.search import Searcher

    with Searcher.from_config(cfg) as searcher:
        return [r.to_json() for r in searcher.search(**query)]
