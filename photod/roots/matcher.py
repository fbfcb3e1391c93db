"""Which names under a root are photos: a root's include and exclude globs, compiled once.

The reconcile scan (photod.roots.scanner), the C walker it drives and the watcher (photod.roots.watcher) all
ask the same Matcher, so a file the watcher reports is one the scan would have found, and the other way round.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Sequence


def _glob_source(patterns: Sequence[str]) -> str | None:
    """Regex source matching any of the globs (anchored at both ends), or None for an empty list.

    A pattern also matches its own literal text, because folder names such as "[Originals]" are common
    and fnmatch would read the brackets as a character class.
    """
    parts = []
    for p in patterns:
        parts.append(fnmatch.translate(p))
        if any(c in p for c in "[]?*"):
            parts.append(re.escape(p) + r"\Z")
    return "|".join(f"(?:{p})" for p in parts) if parts else None


# Lightroom/darktable XMP and Apple's edit instructions: they describe the photo beside them.
SIDECARS = ("*.xmp", "*.aae")


class Matcher:
    """Decides which names a root holds photos under.

    Include globs are matched against file names; exclude globs against every folder name and file
    name on the way. Both ignore case: "$Recycle.Bin", "@eaDir" and "IMG_0001.JPG" are written in
    whatever case the system that made them liked. An empty include list includes every file. Sidecars
    (SIDECARS: metadata beside a photo, never a picture) are never included, whatever the globs say.
    """

    def __init__(self, include: Sequence[str], exclude: Sequence[str]):
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        inc, exc = _glob_source(self.include), _glob_source(self.exclude)
        self._dir_match = re.compile(exc, re.IGNORECASE).match if exc else None
        not_file = _glob_source(self.exclude + SIDECARS)
        self._file_match = re.compile(f"(?!{not_file})(?:{inc or '.*'})", re.IGNORECASE | re.DOTALL).match

    def dir_ok(self, name: str) -> bool:
        """Whether a folder with this name is walked."""
        return self._dir_match is None or self._dir_match(name) is None

    def file_ok(self, name: str) -> bool:
        """Whether a file with this name is a photo candidate."""
        return self._file_match(name) is not None

    def dir_path_ok(self, rel_dir: str) -> bool:
        """Whether every folder of a root-relative folder path is walked ('' is the root itself)."""
        return all(self.dir_ok(part) for part in rel_dir.split("/") if part)

    def path_ok(self, rel_path: str) -> bool:
        """Whether a root-relative file path is one the walk would report."""
        folder, _, name = rel_path.rpartition("/")
        return bool(name) and self.file_ok(name) and self.dir_path_ok(folder)
