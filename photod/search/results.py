"""One photo found, as every search surface shows it: `photod search --json`, the TUI, filename search.

Kept apart from photod.search.searcher so that showing filename results never loads FAISS or a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from photod.store.catalog import PhotoInfoRow


@dataclass
class Result:
    """One photo found. `score` is the cosine similarity for text/photo queries, None for name-only ones.

    `matched` says why it was found, one entry per channel: {"channel": "caption", "text": the caption},
    {"channel": "name"} (its file or folder name), {"channel": "image", "score": the similarity}.
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
    matched: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: PhotoInfoRow, score: float | None) -> "Result":
        camera = " ".join(p for p in (row.get("camera_make"), row.get("camera_model")) if p) or None
        online = bool(row.get("root_online")) and row["state"] != "offline"
        return cls(
            id=row["id"], path=str(Path(row["root_path"]) / row["rel_path"]),
            score=None if score is None else round(float(score), 6), filename=row["filename"],
            folder=row["folder"], root=row.get("root_label") or row["root_path"], root_id=row["root_id"],
            taken_at=row.get("taken_at"), camera=camera, width=row.get("width"), height=row.get("height"),
            state=row["state"], online=online, matched=_matched(row, score))

    def to_json(self) -> dict[str, Any]:
        """The JSON row `photod search --json` prints."""
        return asdict(self)


def matched_caption(result: dict[str, Any]) -> str | None:
    """The caption whose words found a result (a `to_json` row), or None when no caption did."""
    return next((m["text"] for m in result.get("matched", ()) if m["channel"] == "caption"), None)


def _matched(row: PhotoInfoRow, score: float | None) -> list[dict[str, Any]]:
    """The channels that found the row: its caption and name for a text match, the similarity for a search
    by meaning."""
    found: list[dict[str, Any]] = []
    if row.get("caption_match"):
        found.append({"channel": "caption", "text": row["caption_match"]})
    if row.get("name_match"):
        found.append({"channel": "name"})
    if score is not None:
        found.append({"channel": "image", "score": round(float(score), 6)})
    return found
