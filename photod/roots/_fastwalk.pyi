"""The C folder walker's interface (photod/roots/_fastwalk.c), for the type checker: a compiled module has none."""

from collections.abc import Callable

# (rel_dir, names, sizes, mtimes, dir_error, file_errors): the fields of photod.roots.listing.Folder, with the
# errors as (errno, what failed) and (file name, errno).
RawFolder = tuple[str, bytes, bytes, bytes, tuple[int, str] | None, list[tuple[str, int]]]

def scan(
    root: str, dir_ok: Callable[[str], bool], threads: int, progress: Callable[[int], None] | None = None, /
) -> list[RawFolder]: ...
