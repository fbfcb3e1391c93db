"""File names that are not valid UTF-8 (GBK from an old Windows PC, Shift_JIS from a camera, a NAS share's
Big5): cataloged, opened and searched like any other.

Linux names are bytes; Python hands them out as str with the undecodable bytes surrogate-escaped (the
"fs form", as os.listdir and watchdog give them). SQLite text is UTF-8, so such a name cannot be stored as it
is. The catalog keeps two things for it:
- `rel_path`, the row's key, with each undecodable byte written as \\xNN: unique, readable in `photod failed`
  and any SQLite tool;
- `rel_bytes`, the exact bytes of the path (NULL for every UTF-8 name): what the file is opened by, so the
  name round-trips whatever it holds.
What a person sees and searches is the name decoded in the first legacy encoding that reads it whole:
GB18030 (a superset of GBK and GB2312), then Big5, Shift_JIS and EUC-KR, marked with the encoding's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from photod.store.catalog import PendingRow

# In the order tried. GB18030 first: its users are the ones with the most such drives, and it is strict
# enough (two-byte pairs in fixed ranges, four-byte sequences) that mojibake from the others rarely passes.
LEGACY_ENCODINGS = ("gb18030", "big5", "shift_jis", "euc_kr")


def is_utf8(rel: str) -> bool:
    """Whether an fs-form path holds no surrogate-escaped bytes."""
    if rel.isascii():
        return True
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(rel: str) -> tuple[str, bytes | None]:
    """(key, exact bytes or None) of an fs-form relative path, as the catalog stores it."""
    if is_utf8(rel):
        return rel, None
    raw = rel.encode("utf-8", "surrogateescape")
    return key(rel), raw


def key(rel: str) -> str:
    """The catalog key of an fs-form path: itself when UTF-8, else with each undecodable byte as \\xNN."""
    if is_utf8(rel):
        return rel
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def fs_rel(rel_path: str, rel_bytes: bytes | None) -> str:
    """The fs-form path of a catalog row, which opens the very file the row was made for."""
    return os.fsdecode(rel_bytes) if rel_bytes else rel_path


def file_path(row: PendingRow) -> Path:
    """The original file of a catalog row that carries `root_path` (PendingRow, PhotoInfoRow)."""
    return Path(row["root_path"]) / fs_rel(row["rel_path"], row.get("rel_bytes"))


def decoded(raw: bytes) -> tuple[str, str] | None:
    """(text, encoding) of a non-UTF-8 name in the first legacy encoding that decodes it whole, else None."""
    for enc in LEGACY_ENCODINGS:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return None


def shown(rel_path: str, rel_bytes: bytes | None) -> str:
    """A path as a person reads it: UTF-8 as is; else decoded and marked (「三亚/海边.jpg」 [GB18030]), or
    the \\xNN key when no encoding reads it."""
    if not rel_bytes:
        return rel_path
    found = decoded(rel_bytes)
    if found is None:
        return rel_path
    text, enc = found
    return f"{text} [{enc.upper().replace('_', '-')}]"


def searchable(rel_path: str, rel_bytes: bytes | None) -> str:
    """The text a path is found by in filename search: the decoded name (and the key, for its ASCII parts)."""
    if not rel_bytes:
        return rel_path
    found = decoded(rel_bytes)
    return f"{found[0]} {rel_path}" if found else rel_path


def shell_quoted(path: str) -> str:
    """An fs-form path as text that a shell turns back into the exact bytes: itself when UTF-8, else bash's
    $'...' quoting with \\xNN escapes (what `y` copies in the TUI: a clipboard holds text, not bytes)."""
    if is_utf8(path):
        return path
    out = []
    for ch in path:
        if "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch in "\\'":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"
