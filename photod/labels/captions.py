"""Captions and right/wrong marks: the one way a label is written, and the rules it is written by.

A label is a row of the catalog's `captions` table (photo, text, source), or a search result marked right
or wrong for the query that found it (the `feedback` table). They come from `photod label add`, from the TUI
(captions and right/wrong marks), and from the caption files of photod.labels.imports. Every one of them is
written here, by the same rules: a caption is one line with single spaces, never empty, and a photo never
gets the same caption twice (adding it again, or editing another caption into it, leaves one). The catalog
only runs the SQL.

A path names a photo by its absolute path (root + relative path), by its path relative to `base`, or by
its relative path or bare filename when exactly one photo in the catalog has it.

This module needs no torch: it runs on the daemon's machine.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from photod.errors import LabelError
from photod.store.catalog import Catalog

SOURCES = ("user", "import", "folder", "feedback")


@dataclass(frozen=True)
class Label:
    """One (photo, text) pair ready to be written or trained on."""

    photo_id: int
    text: str
    source: str = "import"


# ---- naming photos ---------------------------------------------------------------------------------


class PhotoMatcher:
    """Finds the catalog photo a path (or id) names. Built once per import: one query, then dict lookups."""

    def __init__(self, catalog: Catalog):
        self.by_abs: dict[str, int] = {}
        self.by_rel: dict[str, list[int]] = defaultdict(list)
        self.by_name: dict[str, list[int]] = defaultdict(list)
        self.ids: set[int] = set()
        rows = catalog.query(
            "SELECT p.id, p.rel_path, p.filename, r.path AS root_path FROM photos p"
            " JOIN roots r ON r.id = p.root_id WHERE p.state != 'deleted'"
        )
        for r in rows:
            self.ids.add(r["id"])
            self.by_abs[os.path.normpath(os.path.join(r["root_path"], r["rel_path"]))] = r["id"]
            self.by_rel[r["rel_path"]].append(r["id"])
            self.by_name[r["filename"]].append(r["id"])

    def match(self, ref: str, base: Path | None = None) -> int:
        """The id of the photo `ref` names. Raises ValueError saying why there is none (no file context)."""
        ref = ref.strip()
        if not ref:
            raise ValueError("the image path is empty")
        if os.path.isabs(ref):
            found = self.by_abs.get(os.path.normpath(ref))
            if found is None:
                raise ValueError(f"no photo in the catalog at {ref!r}")
            return found
        rel = str(PurePosixPath(ref.replace("\\", "/")))
        if base is not None:
            found = self.by_abs.get(os.path.normpath(os.path.join(str(base), rel)))
            if found is not None:
                return found
        # Not under `base`: a path relative to its root, or a bare filename, if only one photo has it.
        ids, what = self.by_rel.get(rel, []), "relative path"
        if not ids and "/" not in rel:
            ids, what = self.by_name.get(rel, []), "filename"
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            raise ValueError(f"{ref!r} is ambiguous: {len(ids)} photos have that {what} (give the absolute path)")
        raise ValueError(f"no photo in the catalog at {ref!r}")

    def match_ref(self, ref: str | int, base: Path | None = None) -> int:
        """Like `match`, but a bare number is first taken as a photo id."""
        text = str(ref).strip()
        if text.isdigit() and int(text) in self.ids:
            return int(text)
        return self.match(text, base)


# ---- adding, editing, removing, marking -------------------------------------------------------------


def add_label(catalog: Catalog, photo: str | int, text: str, source: str = "user") -> int:
    """Caption one photo, named by id or path (`photod label add PHOTO TEXT`). Returns the caption id: the
    one it already had, when the photo has this caption."""
    try:
        photo_id = PhotoMatcher(catalog).match_ref(photo, Path.cwd())
    except ValueError as exc:
        raise LabelError(
            f"cannot caption {photo}: {exc}",
            "name the photo by its id or path; `photod search --name ... --json` shows both",
        ) from exc
    return add_captions(catalog, [photo_id], text, source)[0]


def add_captions(catalog: Catalog, photo_ids: Iterable[int], text: str, source: str = "user") -> list[int]:
    """Give every photo the caption, in one transaction (all or none); returns each photo's caption id.

    A photo that already has the caption keeps the one it has.
    """
    text = _caption_text(text)
    if source not in SOURCES:
        raise LabelError(f"unknown caption source {source!r}", f"use one of {', '.join(SOURCES)}")
    ids = list(photo_ids)
    with catalog.transaction():
        for photo_id in ids:
            _check_photo(catalog, photo_id)
        return write_labels(catalog, [Label(photo_id, text, source) for photo_id in ids])[0]


def edit_captions(catalog: Catalog, caption_ids: Iterable[int], text: str) -> None:
    """Change the text of captions, in one transaction. A photo that already has the new text keeps that
    caption and loses the edited one, so it never has the same caption twice."""
    text = _caption_text(text)
    with catalog.transaction() as conn:
        for caption_id in caption_ids:
            row = conn.execute("SELECT photo_id FROM captions WHERE id = ?", (caption_id,)).fetchone()
            if row is None:
                continue  # deleted meanwhile (by another window, or `photod label remove`)
            same = _caption_id(conn, row[0], text)
            if same is not None and same != caption_id:
                catalog.remove_caption(caption_id)
            else:
                catalog.update_caption(caption_id, text)


def remove_captions(catalog: Catalog, caption_ids: Iterable[int]) -> None:
    """Delete captions by id, in one transaction; ids already gone are no error."""
    with catalog.transaction():
        for caption_id in caption_ids:
            catalog.remove_caption(caption_id)


def record_feedback(catalog: Catalog, photo_id: int, query: str, relevant: bool) -> int:
    """Keep "this photo is (not) what `query` means" as a labelled pair for finetune; returns its id.

    Marking the same photo for the same query again replaces the earlier mark: the latest word counts. The
    query is tidied like a caption, so that a mark and a caption of the same words are one pair to train on.
    """
    query = clean_text(query)
    if not query:
        raise LabelError(
            "only a result of a text search can be marked right or wrong",
            "type what the photo shows, then mark the results",
        )
    with catalog.transaction() as conn:
        _check_photo(catalog, photo_id)
        conn.execute("DELETE FROM feedback WHERE photo_id = ? AND query = ?", (photo_id, query))
        cur = conn.execute(
            "INSERT INTO feedback (photo_id, query, relevant, created_at) VALUES (?, ?, ?, ?)",
            (photo_id, query, int(bool(relevant)), time.time()),
        )
    assert cur.lastrowid is not None  # an INSERT sets it
    return cur.lastrowid


def _caption_text(text: str) -> str:
    """The caption as it is kept: one line, single spaces. Raises LabelError when nothing is left."""
    text = clean_text(text)
    if not text:
        raise LabelError("a caption cannot be empty", "give the text to attach, e.g. 小白在沙发上")
    return text


def _check_photo(catalog: Catalog, photo_id: int) -> None:
    if catalog.photo(photo_id) is None:
        raise LabelError(f"no photo with id {photo_id}", "it may have been purged; search again")


def list_labels(catalog: Catalog, photo: str | int | None = None, source: str | None = None) -> list[dict[str, Any]]:
    """Captions with their photo's path (`photod label list`): id, photo_id, text, source, created_at, path."""
    where = ["1 = 1"]
    params: list[int | str] = []
    if photo is not None:
        try:
            where.append("c.photo_id = ?")
            params.append(PhotoMatcher(catalog).match_ref(photo, Path.cwd()))
        except ValueError as exc:
            raise LabelError(f"cannot list captions of {photo}: {exc}") from exc
    if source is not None:
        where.append("c.source = ?")
        params.append(source)
    return catalog.query(
        "SELECT c.id, c.photo_id, c.text, c.source, c.created_at, r.path || '/' || p.rel_path AS path"
        " FROM captions c JOIN photos p ON p.id = c.photo_id JOIN roots r ON r.id = p.root_id"
        f" WHERE {' AND '.join(where)} ORDER BY c.id",
        params,
    )


def remove_label(catalog: Catalog, caption_id: int) -> dict:
    """Delete one caption by its id (`photod label remove ID`); returns the row that was removed."""
    rows = catalog.query("SELECT * FROM captions WHERE id = ?", (int(caption_id),))
    if not rows:
        raise LabelError(f"no caption with id {caption_id}", "see `photod label list` for caption ids")
    remove_captions(catalog, [int(caption_id)])
    return rows[0]


def labelled_pairs(catalog: Catalog, *, sources: Iterable[str] | None = None, feedback: bool = True) -> list[Label]:
    """Every (photo, text) pair to train on: captions, and search results marked right (query -> photo).

    Deleted photos are left out; a pair given twice (a caption that is also a marked query) counts once.
    """
    wanted = set(sources) if sources is not None else None
    seen: set[tuple[int, str]] = set()
    out: list[Label] = []
    rows = catalog.query(
        "SELECT c.photo_id, c.text, c.source FROM captions c JOIN photos p ON p.id = c.photo_id"
        " WHERE p.state != 'deleted' ORDER BY c.id"
    )
    if feedback:
        rows += catalog.query(
            "SELECT f.photo_id, f.query AS text, 'feedback' AS source FROM feedback f"
            " JOIN photos p ON p.id = f.photo_id WHERE f.relevant = 1 AND p.state != 'deleted' ORDER BY f.id"
        )
    for r in rows:
        text = clean_text(r["text"])
        key = (r["photo_id"], text)
        if not text or key in seen or (wanted is not None and r["source"] not in wanted):
            continue
        seen.add(key)
        out.append(Label(r["photo_id"], text, r["source"]))
    return out


# ---- the write every caption goes through -------------------------------------------------------------


def write_labels(catalog: Catalog, labels: list[Label]) -> tuple[list[int], list[Label]]:
    """Insert the labels in ONE transaction, skipping pairs the catalog (or this batch) already has. The
    texts must already be tidied (clean_text) and non-empty.

    Returns each label's caption id (the existing one for a pair already there) and the labels that were new.
    """
    ids: list[int] = []
    added: list[Label] = []
    with catalog.transaction() as conn:
        for lab in labels:
            caption_id = _caption_id(conn, lab.photo_id, lab.text)
            if caption_id is None:
                caption_id = catalog.add_caption(lab.photo_id, lab.text, lab.source)
                added.append(lab)
            ids.append(caption_id)
    return ids, added


def _caption_id(conn: sqlite3.Connection, photo_id: int, text: str) -> int | None:
    """The id of the photo's caption with this text, if it has one (captions_photo makes this a lookup)."""
    row = conn.execute("SELECT id FROM captions WHERE photo_id = ? AND text = ? LIMIT 1", (photo_id, text)).fetchone()
    return None if row is None else row[0]


def clean_text(text: str) -> str:
    """A caption or query as it is kept: one line, single spaces; empty when there were no words."""
    # Captions are one line: newlines and runs of spaces inside a caption carry nothing.
    return " ".join(str(text).split())
