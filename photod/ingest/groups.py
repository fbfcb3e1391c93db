"""Files that are one picture, or belong to one, found by their names within a folder:

- a RAW and a JPEG/HEIC of the same base name (IMG_0001.CR3 + IMG_0001.JPG): one photo, the rendered file
  shown and searched, the RAW attached (`raw`);
- a still and a video of the same base name (IMG_0002.HEIC + IMG_0002.MOV): a Live Photo, the still
  searched, the motion attached (`motion`);
- an original and its edited copy (IMG_4120.JPG + IMG_E4120.JPG, as iPhones export them, or
  IMG_4120-edited.jpg, as Google Photos does): linked, both searched (`edited`).

The links of a folder are rebuilt whenever files in it are staged, from its files that are not deleted; which
of them results hide is decided at search time from whether the shown file is still there (photod.store.wordsearch),
so deleting either file of a pair keeps the photo, and deleting both deletes it.
"""

from __future__ import annotations

import re
from typing import Iterable

from photod.ingest.sniff import RAW_EXTENSIONS, VIDEO_EXTENSIONS, extension
from photod.store.catalog import Catalog

_RENDERED = frozenset({"jpg", "jpeg", "jpe", "heic", "heif", "hif", "avif", "jxl", "png", "tif", "tiff", "webp"})
_STILL = frozenset({"jpg", "jpeg", "heic", "heif", "hif"})
_EDITED = (re.compile(r"^(?P<pre>.*?)E(?P<num>\d{4,})$"), re.compile(r"^(?P<base>.+?)[-_ ]\(?edited\)?$", re.I))


def stem(filename: str) -> str:
    return filename.rsplit(".", 1)[0] if "." in filename else filename


def links_in(files: Iterable[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """(shown id, attached id, kind) for the (id, file name) pairs of one folder."""
    by_stem: dict[str, list[tuple[int, str]]] = {}
    for pid, name in files:
        by_stem.setdefault(stem(name).casefold(), []).append((pid, extension(name)))
    out: list[tuple[int, int, str]] = []
    for group in by_stem.values():
        rendered = [pid for pid, ext in group if ext in _RENDERED]
        stills = [pid for pid, ext in group if ext in _STILL]
        for pid, ext in group:
            if ext in RAW_EXTENSIONS and rendered:
                out.append((rendered[0], pid, "raw"))
            elif ext in VIDEO_EXTENSIONS and stills:
                out.append((stills[0], pid, "motion"))
    for key, group in by_stem.items():
        original = _original_of(key)
        if original is None or original not in by_stem:
            continue
        shown = [pid for pid, ext in by_stem[original] if ext not in RAW_EXTENSIONS | VIDEO_EXTENSIONS]
        for pid, ext in group:
            if shown and ext not in RAW_EXTENSIONS | VIDEO_EXTENSIONS:
                out.append((shown[0], pid, "edited"))
    return out


def _original_of(stem_: str) -> str | None:
    """The stem (casefolded) of the original an edited copy's stem names, or None if it names none."""
    m = _EDITED[0].match(stem_.upper())
    if m:
        return (m["pre"] + m["num"]).casefold()
    m = _EDITED[1].match(stem_)
    return m["base"].casefold() if m else None


def relink(catalog: Catalog, folders: Iterable[tuple[int, str]]) -> int:
    """Rebuild the links of these (root id, folder) pairs. Returns the links they hold now."""
    n = 0
    with catalog.transaction():
        for root_id, folder in set(folders):
            rows = catalog.query(
                "SELECT id, filename FROM photos WHERE root_id = ? AND folder = ?"
                " AND kind != 'frame' AND state != 'deleted'",
                (root_id, folder),
            )
            links = links_in((r["id"], r["filename"]) for r in rows)
            catalog.replace_links([r["id"] for r in rows], links)
            n += len(links)
    return n
