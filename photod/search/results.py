"""One photo found, as every search surface shows it: `photod search --json`, the TUI, filename search.

Kept apart from photod.search.searcher so that showing filename results never loads FAISS or a model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from photod.store import names

if TYPE_CHECKING:
    from photod.store.catalog import PhotoInfoRow


@dataclass
class Result:
    """One photo found. `score` is the cosine similarity for text/photo queries, None for name-only ones.

    `matched` says why it was found, one entry per channel: {"channel": "caption", "text": the caption}
    (its words matched; with "score" when its meaning did), {"channel": "text", "text": the line read in the
    photo that matched}, {"channel": "place", "text": where it was taken}, {"channel": "name"} (its file or
    folder name), {"channel": "image", "score": the similarity}. `place` is where it was taken and `text`
    the text read in it (lines joined by newlines), whatever found it; None where not known.

    A video is one result, at its best-matching moment: `kind` "video", `video_time` the moment's time in
    seconds (its first frame's for a match by words), `duration` its length. `path` is the file's path with
    any byte of its name that is not UTF-8 written \\xNN; then `filename` and `folder` are the name decoded
    in `name_encoding` (gb18030, big5, shift_jis or euc_kr), None for every UTF-8 name, and `shown` the
    whole path so decoded and marked.
    """

    id: int
    path: str
    score: float | None
    filename: str
    folder: str
    root: str
    root_id: int
    taken_at: str | None
    camera: str | None
    width: int | None
    height: int | None
    state: str
    online: bool
    place: str | None = None
    text: str | None = None
    matched: list[dict[str, Any]] = field(default_factory=list)
    fused: float | None = None  # the fused rank score that ordered the results (photod.search.fusion)
    kind: str = "photo"
    video_time: float | None = None
    duration: float | None = None
    name_encoding: str | None = None
    shown: str | None = None  # with name_encoding: the path decoded and marked, as shown_path gives it
    video_id: int | None = None  # a frame's video (a search shows the video instead: Searcher._join)
    frame_id: int | None = None  # a video's matching moment, whose staged picture shows it

    @classmethod
    def from_row(cls, row: PhotoInfoRow, score: float | None, words: str | None = None) -> "Result":
        """A result from a catalog row; `words` (what was searched) picks the line of its text that matched."""
        camera = " ".join(p for p in (row.get("camera_make"), row.get("camera_model")) if p) or None
        online = bool(row.get("root_online")) and row["state"] != "offline"
        filename, folder, encoding = _decoded_names(row)
        kind = row.get("kind") or "photo"
        return cls(
            id=row["id"],
            path=os.path.join(row["root_path"], row["rel_path"]),  # Path() cost 20 % of a query
            score=None if score is None else round(float(score), 6),
            filename=filename,
            folder=folder,
            root=row.get("root_label") or row["root_path"],
            root_id=row["root_id"],
            taken_at=row.get("taken_at"),
            camera=camera,
            width=row.get("width"),
            height=row.get("height"),
            state=row["state"],
            online=online,
            place=row.get("place_label"),
            text=row.get("photo_text") or None,
            matched=_matched(row, score, words),
            kind=kind,
            duration=row.get("duration"),
            video_time=row.get("frame_time") if kind == "frame" else 0.0 if kind == "video" else None,
            name_encoding=encoding,
            video_id=row.get("parent_id") if kind == "frame" else None,
            shown=os.path.join(row["root_path"], names.shown(row["rel_path"], row["rel_bytes"])) if encoding else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON row `photod search --json` prints. (Not dataclasses.asdict, which deep-copies every value
        recursively: 15 ms of a 60-result query.)"""
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["matched"] = [dict(m) for m in self.matched]
        return row


def merge_reasons(into: Result, other: Result) -> None:
    """One photo found twice (by two words, or two channels): one result with both reasons and the
    similarity, where either had it."""
    seen = {(m["channel"], m.get("text")) for m in into.matched}
    into.matched += [m for m in other.matched if (m["channel"], m.get("text")) not in seen]
    if into.score is None and other.score is not None:
        into.score = other.score
    # The similarity last: it is the weakest reason, and the CLI leads with it anyway.
    into.matched.sort(key=lambda m: m["channel"] == "image")


def clock(seconds: float) -> str:
    """A time in a video as people read it: 「01:23」, 「1:02:03」 past an hour."""
    s = int(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m:02d}:{s % 60:02d}"


def video_label(result: dict[str, Any]) -> str | None:
    """「01:23」 / 02:41 for a video result (the moment, then the length), None for a photo."""
    if result.get("kind") != "video":
        return None
    at = f"「{clock(result.get('video_time') or 0.0)}」"
    return at + (f" / {clock(result['duration'])}" if result.get("duration") else "")


def shown_path(result: dict[str, Any]) -> str:
    """A result's path as a person reads it: a name that is not UTF-8 decoded and marked with its encoding
    (/mnt/old/三亚/海边.jpg [GB18030]); else `path` itself."""
    return result.get("shown") or result["path"]


def _decoded_names(row: "PhotoInfoRow") -> tuple[str, str, str | None]:
    """(filename, folder, encoding): a name that is not UTF-8 decoded where a legacy encoding reads it."""
    raw = row.get("rel_bytes")
    found = names.decoded(raw) if raw else None
    if found is None:
        return row["filename"], row["folder"], None
    text, encoding = found
    folder, _, filename = text.rpartition("/")
    return filename, folder, encoding


def reasons(result: dict[str, Any]) -> list[str]:
    """Why a result was found, as a person reads it: 「文字: 三亚湾海鲜」, 「地点: 海南 三亚」, 「标注: 小白」,
    「文件名」, 「相似度 0.31」, in the order of `matched`. The CLI's result line and the TUI's cards say these."""
    out = []
    for m in result.get("matched", ()):
        if m["channel"] == "caption":
            out.append(f"标注: {m['text']}" + (f" ({m['score']:.2f})" if m.get("score") is not None else ""))
        elif m["channel"] == "text":
            out.append(f"文字: {m['text']}")
        elif m["channel"] == "place":
            out.append(f"地点: {m['text']}")
        elif m["channel"] == "name":
            out.append("文件名")
        elif m["channel"] == "image":
            out.append(f"相似度 {m['score']:.2f}")
    return out


def best_line(text: str, words: str | None) -> str:
    """The line of a photo's text that holds most of the searched words (spaces ignored, as search does)."""
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    if not words:
        return lines[0]
    wanted = [w.casefold() for w in words.split() if w]
    squeeze = lambda t: "".join(t.split()).casefold()  # noqa: E731
    return max(lines, key=lambda line: sum(w in squeeze(line) for w in wanted))


def _matched(row: PhotoInfoRow, score: float | None, words: str | None) -> list[dict[str, Any]]:
    """The channels that found the row: its words' channels (caption, text in the photo, place, name) for
    a search by words, the similarity for a search by meaning."""
    found: list[dict[str, Any]] = []
    if row.get("caption_match"):
        found.append({"channel": "caption", "text": row["caption_match"]})
    if row.get("text_match"):
        found.append({"channel": "text", "text": best_line(row["text_match"], words)})
    if row.get("place_match"):
        found.append({"channel": "place", "text": row["place_match"]})
    if row.get("name_match"):
        found.append({"channel": "name"})
    if score is not None:
        found.append({"channel": "image", "score": round(float(score), 6)})
    return found
