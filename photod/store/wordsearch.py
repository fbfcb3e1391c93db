"""Search by words: photos whose file and folder names, captions, text read in them or places hold what was
typed, narrowed by filters (dates, root, camera, folder, place), as the catalog answers it.

Functions taking the catalog, as photod.store.vectors and photod.store.signals are: the SQL of one domain
beside the catalog's connection rather than inside the Catalog class. The full-text tables are filled by
the catalog and photod.store.signals; how typed words become a MATCH expression is photod.store.textsearch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence, cast

from photod.store.catalog import Catalog, NameMatchRow
from photod.store.textsearch import fts_query

# The rows whose text matches an FTS query (one `?`): photos by path, captions by their words, photos by
# the text read in them and by the names of where they were taken.
_NAME_HITS = "SELECT rowid FROM photos_fts WHERE photos_fts MATCH ?"
_CAPTION_HITS = "SELECT rowid FROM captions_fts WHERE captions_fts MATCH ?"
_TEXT_HITS = "SELECT rowid FROM photo_text_fts WHERE photo_text_fts MATCH ?"
_PLACE_HITS = "SELECT rowid FROM photo_places_fts WHERE photo_places_fts MATCH ?"
# Every photo one of those finds: one IN list (UNION ALL, not an OR of several), so SQLite looks the matches
# up instead of scanning photos. Four `?`, all the same MATCH expression.
_ANY_HITS = (
    f"{_NAME_HITS} UNION ALL SELECT photo_id FROM captions WHERE id IN ({_CAPTION_HITS})"
    f" UNION ALL {_TEXT_HITS} UNION ALL {_PLACE_HITS}"
)
# When a photo was taken, for date filters and the newest-first order: EXIF's time, else the file's.
_TAKEN = "COALESCE(p.taken_at, strftime('%Y-%m-%dT%H:%M:%S', p.mtime_ns / 1e9, 'unixepoch'))"

# Files shown through another (photod.ingest.groups): a RAW with its JPEG, a Live Photo's motion with its still.
_ATTACHED = (
    "SELECT l.other_id FROM photo_links l JOIN photos o ON o.id = l.photo_id"
    " WHERE l.kind IN ('raw', 'motion') AND o.state NOT IN ('deleted', 'failed')"
)


@dataclass(frozen=True)
class Filters:
    """What narrows a search, as the catalog applies it; the same through the whole stack (photod.search's
    channels and searcher take it unchanged). Dates compare against EXIF taken-at, else the file's mtime:
    `after`/`before` bound them (ISO prefixes: YYYY, YYYY-MM or YYYY-MM-DD), `dates` are [first, after last)
    ISO ranges of which one must hold them, `yearly` ('MM-DD', 'MM-DD') a window of every year (it wraps over
    New Year when the end comes first). `root_id` is a root as the query was set up with it (a name resolved
    once, in photod.search.finder). `camera` matches make or model, `folder` a folder and what is under it,
    `place` the photos taken where a place's names (Chinese or English, any level: 海南, 三亚, Sanya) hold its
    words."""

    after: str | None = None
    before: str | None = None
    root_id: int | None = None
    camera: str | None = None
    folder: str | None = None
    place: str | None = None
    dates: tuple[tuple[str, str], ...] | None = None
    yearly: tuple[str, str] | None = None

    def active(self) -> bool:
        """Whether any filter is set (a vector search then narrows its hits to the photos passing them)."""
        fields = (self.after, self.before, self.root_id, self.camera, self.folder, self.place, self.dates, self.yearly)
        return any(v is not None for v in fields)


EVERYTHING = Filters()  # no filter set


def search_name(
    cat: Catalog,
    text: str | None = None,
    *,
    filters: Filters = EVERYTHING,
    ids: Iterable[int] | None = None,
    exact: bool = False,
    match: str | None = None,
    limit: int | None = 50,
) -> list[NameMatchRow]:
    """Search by words, in file and folder names, captions, text in photos and places, narrowed by the
    filters, newest first. `exact`: the text as one phrase (a quoted "三亚湾"). `match`: an FTS5 expression
    instead of `text` (photod.store.textsearch makes them). A video's frames are found by their look only
    (by id, from the index), never by words; a RAW or a Live Photo's motion is shown through the file it
    belongs to, while that one is there."""
    found = _where(text, exact, filters, ids, match)
    if found is None:
        return []
    where, params, match = found
    sql = (
        f"SELECT p.*, r.path AS root_path, r.label AS root_label, r.online AS root_online,"
        f" {_TAKEN} AS taken_or_mtime, l.label_zh AS place_label, t.text AS photo_text"
        f" FROM photos p JOIN roots r ON r.id = p.root_id"
        f" LEFT JOIN photo_places l ON l.photo_id = p.id LEFT JOIN photo_text t ON t.photo_id = p.id"
        f" WHERE {' AND '.join(where)} ORDER BY taken_or_mtime DESC, p.id"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return cast("list[NameMatchRow]", cat.query(*_with_reasons(sql, params, match)))


def matching_ids(
    cat: Catalog,
    text: str | None = None,
    *,
    filters: Filters = EVERYTHING,
    exact: bool = False,
    limit: int | None = None,
) -> list[int]:
    """The ids search_name would return (same words and filters), unordered: what a vector search is
    narrowed to, and a channel's ranking, without building rows for photos not shown."""
    found = _where(text, exact, filters)
    if found is None:
        return []
    where, params, _match = found
    sql = f"SELECT p.id FROM photos p WHERE {' AND '.join(where)}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return cat.ids(sql, params)


def shown(
    cat: Catalog, ids: Iterable[int], filters: Filters = EVERYTHING
) -> dict[int, tuple[str, int | None, float | None]]:
    """Those of the photos search_name(ids=ids, filters=filters) would return, each with its kind, parent (a
    frame's video) and frame time: which FAISS hits show, without reading their rows."""
    found = _where(None, False, filters, ids)
    if found is None:
        return {}
    where, params, _match = found
    return {
        r[0]: (r[1], r[2], r[3])
        for r in cat.tuples(
            f"SELECT p.id, p.kind, p.parent_id, p.frame_time FROM photos p WHERE {' AND '.join(where)}", params
        )
    }


def unsearchable_ids(cat: Catalog) -> set[int]:
    """Rows the full-text tables may hold that a search by words never shows: photos deleted but kept
    for the grace period, video frames, and RAW files and Live Photo motions shown through their pair."""
    return {
        r[0]
        for r in cat.tuples(
            f"SELECT id FROM photos WHERE state = 'deleted' OR kind = 'frame' UNION SELECT * FROM ({_ATTACHED})"
        )
    }


def word_hits(cat: Catalog, text: str, exact: bool = False) -> set[int]:
    """The photos whose names, captions, text or place hold the words (or, `exact`, these very
    characters): what an exclusion drops and a quoted phrase requires."""
    match = fts_query(text, exact=exact)
    if match is None:
        return set()
    found = set(cat.ids(_ANY_HITS, [match] * 4))
    return _holding(cat, found, text) if exact else found


def _holding(cat: Catalog, ids: set[int], phrase: str) -> set[int]:
    """Those of the photos whose texts hold `phrase` as it is written (case aside): the full-text match
    of its characters also matches them across a space or a line break (三亚 湾仔 for "三亚湾")."""
    wanted = phrase.casefold()
    rows = cat.conn.execute(
        "SELECT id, rel_path FROM photos WHERE id IN (SELECT value FROM json_each(?))"
        " UNION ALL SELECT photo_id, text FROM captions WHERE photo_id IN (SELECT value FROM json_each(?))"
        " UNION ALL SELECT photo_id, text FROM photo_text WHERE photo_id IN (SELECT value FROM json_each(?))"
        " UNION ALL SELECT photo_id, names FROM photo_places WHERE photo_id IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(ids))] * 4,
    )
    return {pid for pid, text in rows if wanted in (text or "").casefold()}


def _where(
    text: str | None,
    exact: bool,
    filters: Filters,
    ids: Iterable[int] | None = None,
    match: str | None = None,
) -> tuple[list[str], list[Any], str | None] | None:
    """The WHERE clauses and parameters of a search by words and filters (see search_name), and the
    words' MATCH expression; None when the words (or the place) hold nothing searchable."""
    where = ["p.state != 'deleted'", f"p.id NOT IN ({_ATTACHED})"]
    if ids is None:
        where.append("p.kind != 'frame'")
    params: list[Any] = []
    match = match or (fts_query(text, exact=exact) if text else None)
    place_match = fts_query(filters.place) if filters.place else None
    if (text and match is None) or (filters.place and place_match is None):
        return None
    if match:
        where.append(f"p.id IN ({_ANY_HITS})")
        params += [match] * 4
    if place_match:
        where.append(f"p.id IN ({_PLACE_HITS})")
        params.append(place_match)
    _narrowed(filters, where, params)
    if ids is not None:
        id_list = list(ids)
        where.append(f"p.id IN ({','.join('?' * len(id_list))})")
        params += id_list
    return where, params, match


def _narrowed(filters: Filters, where: list[str], params: list[Any]) -> None:
    """Add the clauses and parameters of the filters other than the place."""
    if filters.after or filters.before:
        sql, bounds = _taken_within([(filters.after, filters.before)])
        where.append(sql)
        params += bounds
    if filters.dates is not None:
        sql, bounds = _taken_within(filters.dates)
        where.append(sql)
        params += bounds
    if filters.yearly:
        day = f"substr({_TAKEN}, 6, 5)"
        first, last = filters.yearly
        where.append(f"({day} BETWEEN ? AND ?)" if first <= last else f"({day} >= ? OR {day} <= ?)")
        params += [first, last]
    if filters.root_id is not None:
        where.append("p.root_id = ?")
        params.append(filters.root_id)
    if filters.camera:
        where.append("(p.camera_model LIKE ? OR p.camera_make LIKE ?)")
        params += [f"%{filters.camera}%", f"%{filters.camera}%"]
    if filters.folder:
        folder = filters.folder.strip("/")
        where.append("(p.folder = ? OR p.folder LIKE ? ESCAPE '\\')")
        params += [folder, _like_prefix(folder) + "/%"]


def _taken_within(spans: Sequence[tuple[str | None, str | None]]) -> tuple[str, list[Any]]:
    """Photos taken in any of the [first, before) spans (an open end: None), looked up through the index
    on taken_at, and among photos without one by their file's time: a scan of the COALESCE of both took
    25 ms at 100,000 photos."""
    if not spans:
        return "0", []
    parts, params = [], []
    for first, before in spans:
        for column, known in (("taken_at", "taken_at IS NOT NULL"), (_TAKEN.replace("p.", ""), "taken_at IS NULL")):
            bounds = [f"{column} >= ?"] * (first is not None) + [f"{column} < ?"] * (before is not None)
            parts.append(f"SELECT id FROM photos WHERE {known} AND {' AND '.join(bounds) or '1'}")
            params += [b for b in (first, before) if b is not None]
    return f"p.id IN ({' UNION ALL '.join(parts)})", params


def _with_reasons(sql: str, params: list[Any], match: str | None) -> tuple[str, list[Any]]:
    """A search by words with why each photo matched: its path (`name_match`), the first caption that did
    (`caption_match`), the text read in it (`text_match`) and its place (`place_match`). Asked of the page of
    rows returned only: asked of every match before sorting, it doubled the time of a one-letter query at
    100,000 photos."""
    reasons = "NULL AS name_match, NULL AS caption_match, NULL AS text_match, NULL AS place_match"
    if match:
        reasons = (
            f"m.id IN ({_NAME_HITS}) AS name_match, (SELECT text FROM captions WHERE photo_id = m.id"
            f" AND id IN ({_CAPTION_HITS}) ORDER BY id LIMIT 1) AS caption_match,"
            f" (SELECT text FROM photo_text WHERE photo_id = m.id AND m.id IN ({_TEXT_HITS})) AS text_match,"
            f" (SELECT label_zh FROM photo_places WHERE photo_id = m.id AND m.id IN ({_PLACE_HITS}))"
            f" AS place_match"
        )
        params = [match] * 4 + params
    return f"SELECT m.*, {reasons} FROM ({sql}) m ORDER BY m.taken_or_mtime DESC, m.id", params


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
