"""The caption files people bring: the formats photod reads, each file checked whole before any of it is written.

The import formats:

- Chinese-CLIP's dataset files: `NAME_texts.jsonl` (one JSON object a line: `text_id`, `text`,
  `image_ids`) with, beside it, `NAME_imgs.tsv` (`image_id<TAB>base64 image`). An image of the TSV is
  matched to a catalog photo by content: the blake2b of its decoded bytes against the photos' content hash
  (the TSV holds the original file), or its bytes against the staged JPEG of the photo with that id (a
  dataset photod itself exported, whose image ids are photo ids). Images that match no photo are NOT added
  to the library: a dataset's strangers are not the person's photos, and a caption needs a photo to belong
  to. They are an error (default) or, with `unmatched="skip"`, left out and counted. Without a TSV, the
  image ids are taken as photo ids.
- The Flickr8k-CN style JSON list: `[{"image": path, "caption": ["...", ...]}, ...]`.
- A CSV of path and caption, with or without a header row.
- Folder names as weak captions (source 'folder'), when asked.

Image paths name photos as PhotoMatcher does (photod.labels.captions), relative paths starting from `base`.

An import validates the whole file first, then writes every caption in one catalog transaction: a file
with a bad line adds nothing, and the error names the file, the line and what is wrong. Importing the
same file again adds nothing new (a photo never gets the same caption twice).

This module needs no torch: it runs on the daemon's machine.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator

from photod.errors import LabelError, StageError
from photod.ingest.decode import content_hash
from photod.labels.captions import Label, PhotoMatcher, clean_text, write_labels
from photod.store.catalog import Catalog
from photod.store.stage import Stage

log = logging.getLogger(__name__)

FORMATS = ("cnclip", "flickr8k", "csv")
_MAX_REPORTED = 5  # problems named in one error message; the rest are counted


@dataclass
class ImportReport:
    """What an import did."""

    path: Path
    format: str
    added: int = 0
    duplicates: int = 0  # already in the catalog, or twice in the file
    unmatched: list[str] = field(default_factory=list)  # images left out with unmatched="skip"
    photos: int = 0

    def count(self, labels: list[Label], added: list[Label]) -> None:
        """Tally a write: `added` are the labels that were new."""
        self.added = len(added)
        self.duplicates = len(labels) - len(added)
        self.photos = len({lab.photo_id for lab in added})


def detect_format(path: Path) -> str:
    """The import format a file name suggests."""
    name = path.name.lower()
    if name.endswith(".jsonl"):
        return "cnclip"
    if name.endswith(".json"):
        return "flickr8k"
    if name.endswith((".csv", ".tsv")) and not name.endswith("_imgs.tsv"):
        return "csv"
    raise LabelError(f"cannot tell the format of {path} from its name", f"pass --format, one of {', '.join(FORMATS)}")


def import_labels(
    catalog: Catalog,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    base: str | os.PathLike[str] | None = None,
    images: str | os.PathLike[str] | None = None,
    unmatched: str = "error",
    data_dir: str | os.PathLike[str] | None = None,
) -> ImportReport:
    """Import captions from a file (`photod label import FILE --format ...`). All or nothing.

    fmt: 'cnclip' (a `*_texts.jsonl`; `images` is its `*_imgs.tsv`, found beside it when not given),
    'flickr8k' (JSON list) or 'csv'; guessed from the file name when None. base: the folder relative image
    paths start from (default: the file's own folder, then catalog-relative paths). unmatched: 'error' or
    'skip' for images of a Chinese-CLIP TSV that are not in the catalog. data_dir: where the stage is, for
    matching a dataset photod exported (optional).
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise LabelError(f"unknown label format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    if unmatched not in ("error", "skip"):
        raise LabelError(f"unmatched must be 'error' or 'skip', not {unmatched!r}")
    if not path.is_file():
        raise LabelError(f"label file {path} does not exist", "check the path")
    base_dir = Path(base) if base is not None else path.parent
    matcher = PhotoMatcher(catalog)
    report = ImportReport(path=path, format=fmt)
    if fmt == "cnclip":
        labels = _cnclip_labels(catalog, matcher, path, images, unmatched, data_dir, report)
    elif fmt == "flickr8k":
        labels = _resolve(matcher, path, _flickr8k_rows(path), base_dir)
    else:
        labels = _resolve(matcher, path, _csv_rows(path), base_dir)
    report.count(labels, write_labels(catalog, labels)[1])
    log.info(
        "imported %d captions for %d photos from %s (%d already there)",
        report.added,
        report.photos,
        path,
        report.duplicates,
    )
    return report


def import_folder_labels(catalog: Catalog, root: str | int | None = None) -> ImportReport:
    """Folder names as weak captions (source 'folder'): each photo gets its folder's last name, e.g.
    2019三亚婚礼/IMG_1.jpg -> '2019三亚婚礼'. Photos at a root's top level get none. Idempotent."""
    sql = "SELECT id, folder FROM photos WHERE state != 'deleted' AND folder != '' AND kind != 'frame'"
    params: list = []
    if root is not None:
        sql += " AND root_id = ?"
        params.append(catalog.find_root(str(root)).id)
    names = [(r["id"], clean_text(PurePosixPath(r["folder"]).name)) for r in catalog.query(sql, params)]
    labels = [Label(photo_id, name, "folder") for photo_id, name in names if name]
    report = ImportReport(path=Path("(folders)"), format="folder")
    report.count(labels, write_labels(catalog, labels)[1])
    return report


class _Problems:
    """Collects what is wrong with a file, so that one error names every bad line (up to a few)."""

    def __init__(self, path: Path):
        self.path = path
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, what: str) -> None:
        self.items.append((line, what))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        shown = "; ".join(f"line {line}: {what}" for line, what in self.items[:_MAX_REPORTED])
        more = len(self.items) - _MAX_REPORTED
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        raise LabelError(
            f"{self.path}: {shown}{suffix}", "fix the file and import it again; nothing from it was imported"
        )


def _resolve(matcher: PhotoMatcher, path: Path, rows: Iterator[tuple[int, str | None, str]], base: Path) -> list[Label]:
    """(line, image path, caption) rows -> labels, or a LabelError naming every bad line.

    A row whose path is None is a line that could not be read; its third field says why.
    """
    problems = _Problems(path)
    labels = []
    try:
        for line, ref, text in rows:
            if ref is None:
                problems.add(line, text)
                continue
            text = clean_text(text)
            if not text:
                problems.add(line, "the caption is empty")
                continue
            try:
                labels.append(Label(matcher.match(ref, base), text, "import"))
            except ValueError as exc:
                problems.add(line, str(exc))
    except _FileProblem as exc:
        problems.add(exc.line, exc.what)
    problems.raise_if_any()
    return labels


class _FileProblem(Exception):
    """A problem that stops reading the file (bad JSON, bad encoding) at a line."""

    def __init__(self, line: int, what: str):
        super().__init__(what)
        self.line = line
        self.what = what


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LabelError(
            f"{path}: line {line}: not UTF-8 text (byte {exc.start})",
            "save the file as UTF-8 and import it again; nothing from it was imported",
        ) from exc


def _csv_rows(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """(line, path, caption) of a CSV; a first row reading path/image/file + caption/text is a header."""
    text = _read_text(path)
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect)
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if line == 1 and _is_header(row):
                continue
            if len(row) != 2:
                yield line, None, f"expected 2 columns (path, caption), found {len(row)}"
                continue
            yield line, row[0], row[1]
    except csv.Error as exc:
        raise _FileProblem(reader.line_num, f"not valid CSV: {exc}") from exc


def _is_header(row: list[str]) -> bool:
    cells = [c.strip().lower() for c in row]
    return (
        len(cells) == 2
        and cells[0] in {"path", "image", "file", "filename", "photo"}
        and cells[1] in {"caption", "text", "label", "captions"}
    )


def _flickr8k_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, path, caption) of a Flickr8k-CN style JSON list, each item's line found as it is parsed."""
    text = _read_text(path)
    decoder = json.JSONDecoder()

    def line_at(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    pos = _skip_space(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise _FileProblem(line_at(pos), 'expected a JSON list of {"image": ..., "caption": [...]} objects')
    pos = _skip_space(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            item, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise _FileProblem(exc.lineno, f"not valid JSON: {exc.msg}") from exc
        line = line_at(pos)
        yield from _flickr8k_item(item, line)
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            if _skip_space(text, pos + 1) != len(text):
                raise _FileProblem(line_at(pos + 1), "unexpected text after the closing ]")
            return
        raise _FileProblem(line_at(pos), "expected , or ] after an item")


def _flickr8k_item(item: object, line: int) -> Iterator[tuple[int, str, str]]:
    if not isinstance(item, dict):
        raise _FileProblem(line, f"expected an object with image and caption, found {type(item).__name__}")
    image = item.get("image")
    captions = item.get("caption", item.get("captions"))
    if not isinstance(image, str):
        raise _FileProblem(line, 'the item has no "image" path')
    if isinstance(captions, str):
        captions = [captions]
    if not isinstance(captions, list) or not captions or not all(isinstance(c, str) for c in captions):
        raise _FileProblem(line, f'the item for {image!r} has no "caption" list of strings')
    for caption in captions:
        yield line, image, caption


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _cnclip_labels(
    catalog: Catalog,
    matcher: PhotoMatcher,
    path: Path,
    images: str | os.PathLike[str] | None,
    unmatched: str,
    data_dir: str | os.PathLike[str] | None,
    report: ImportReport,
) -> list[Label]:
    """Labels of a Chinese-CLIP `*_texts.jsonl`, image ids mapped to photos through its `*_imgs.tsv`."""
    tsv = Path(images) if images is not None else _sibling_tsv(path)
    problems = _Problems(path)
    entries: list[tuple[int, str, list[int]]] = []
    try:
        for line, obj in _jsonl(path):
            entry = _cnclip_entry(obj)
            if isinstance(entry, str):
                problems.add(line, entry)
            else:
                entries.append((line, *entry))
    except _FileProblem as exc:
        problems.add(exc.line, exc.what)
    problems.raise_if_any()

    if tsv is not None:
        id_map, strangers = _match_tsv(catalog, tsv, data_dir, {i for _l, _t, ids in entries for i in ids})
    else:
        id_map = {i: i for _l, _t, ids in entries for i in ids if i in matcher.ids}
        strangers = set()
    labels = []
    for line, text, image_ids in entries:
        for image_id in image_ids:
            if image_id in id_map:
                labels.append(Label(id_map[image_id], text, "import"))
            elif image_id in strangers and unmatched == "skip":
                report.unmatched.append(str(image_id))
            elif image_id in strangers and tsv is not None:  # strangers come from a TSV only
                problems.add(line, f"image {image_id} of {tsv.name} matches no photo in the catalog")
            elif tsv is not None:
                problems.add(line, f"image {image_id} is not in {tsv.name}")
            else:
                problems.add(
                    line,
                    f"image id {image_id} is not a photo id in the catalog"
                    f" (and there is no {path.name.replace('_texts.jsonl', '_imgs.tsv')} beside it)",
                )
    problems.raise_if_any()
    return labels


def _sibling_tsv(path: Path) -> Path | None:
    if path.name.endswith("_texts.jsonl"):
        tsv = path.with_name(path.name[: -len("_texts.jsonl")] + "_imgs.tsv")
        if tsv.is_file():
            return tsv
    return None


def _jsonl(path: Path) -> Iterator[tuple[int, object]]:
    for line, raw in enumerate(_read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield line, json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _FileProblem(line, f"not valid JSON: {exc.msg}") from exc


def _cnclip_entry(obj: object) -> tuple[str, list[int]] | str:
    """(text, image ids) of one texts.jsonl object, or what is wrong with it."""
    if not isinstance(obj, dict):
        return "expected a JSON object with text_id, text and image_ids"
    missing = [k for k in ("text_id", "text", "image_ids") if k not in obj]
    if missing:
        return f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    text, ids = obj["text"], obj["image_ids"]
    if not isinstance(text, str) or not clean_text(text):
        return "text must be a non-empty string"
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return "image_ids must be a non-empty list of integers"
    return clean_text(text), ids


def _match_tsv(
    catalog: Catalog, tsv: Path, data_dir: str | os.PathLike[str] | None, wanted: set[int]
) -> tuple[dict[int, int], set[int]]:
    """image id -> photo id for the TSV's images that are in the library, and the ids of those that are not.

    Only the images the texts use are decoded. A malformed TSV line is a LabelError naming it.
    """
    by_hash = {
        r[0]: r[1]
        for r in catalog.conn.execute(
            "SELECT content_hash, id FROM photos WHERE content_hash IS NOT NULL AND state != 'deleted'"
        )
    }
    stage = _open_stage(data_dir)
    problems = _Problems(tsv)
    id_map: dict[int, int] = {}
    strangers: set[int] = set()
    try:
        for line, raw in enumerate(_read_text(tsv).splitlines(), start=1):
            if not raw.strip():
                continue
            parts = raw.strip().split("\t")
            if len(parts) != 2 or not parts[0].strip().isdigit():
                problems.add(line, "expected image_id<TAB>base64 image")
                continue
            image_id = int(parts[0])
            if image_id not in wanted:
                continue
            try:
                data = base64.urlsafe_b64decode(parts[1])
            except (binascii.Error, ValueError):
                problems.add(line, f"the image of {image_id} is not valid base64")
                continue
            photo_id = by_hash.get(content_hash(data))
            if photo_id is None and stage is not None and stage.get_jpeg(image_id) == data:
                photo_id = image_id
            if photo_id is None:
                strangers.add(image_id)
            else:
                id_map[image_id] = photo_id
    finally:
        if stage is not None:
            stage.close()
    problems.raise_if_any()
    return id_map, strangers


def _open_stage(data_dir: str | os.PathLike[str] | None) -> Stage | None:
    """The stage, for matching a dataset photod exported; None when there is none to match against."""
    if data_dir is None:
        return None
    try:
        return Stage(data_dir, readonly=True)
    except StageError:
        return None
