"""The folder listing: the C walker held to the pure-Python one on real, awkward trees."""

from __future__ import annotations

import os

import pytest

from photod.roots import listing
from photod.roots.listing import Folder, list_tree, list_tree_python

needs_c = pytest.mark.skipif(listing._fastwalk is None, reason="photod.roots._fastwalk was not built (no C compiler)")


def write(path, data=b"\xff\xd8\xff photo"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def as_map(folders: list[Folder]) -> dict[str, tuple]:
    """{rel: (names, sizes, mtimes, error errno, file errors)}: comparable across the two listings."""
    out = {}
    for f in folders:
        assert f.rel not in out, f"{f.rel!r} listed twice"
        out[f.rel] = (
            f.file_names(),
            *f.columns(),
            f.error.errno if f.error else None,
            sorted((n, e.errno) for n, e in f.file_errors),
        )
    return out


@pytest.fixture
def awkward(tmp_path):
    """A tree with what real drives hold: CJK and spaced names, names that are not UTF-8, symlinks to
    files and folders (one looping back up), a FIFO, empty folders, hidden and system folders."""
    root = tmp_path / "root"
    write(root / "a.jpg")
    write(root / "2019 三亚 婚礼" / "IMG_0001.JPG", b"x" * 1234)
    write(root / "2019 三亚 婚礼" / "notes.txt")
    write(root / "deep" / "er" / "est" / "x.heic")
    write(root / "@eaDir" / "a.jpg" / "SYNOPHOTO_THUMB_XL.jpg")
    (root / "empty" / "nested").mkdir(parents=True)
    raw = os.path.join(os.fsencode(root), b"caf\xe9")
    os.mkdir(raw)
    with open(os.path.join(raw, b"na\xefve.jpg"), "wb") as f:
        f.write(b"y")
    os.symlink(root / "a.jpg", root / "link.jpg")
    os.symlink(root, root / "deep" / "loop")
    os.mkfifo(root / "pipe.jpg")
    os.utime(root / "a.jpg", ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))
    return root


def skip_system(name: str) -> bool:
    return name != "@eaDir"


@needs_c
@pytest.mark.parametrize("threads", [1, 2, 5])
def test_c_listing_equals_the_python_listing(awkward, threads):
    c = as_map(list_tree(awkward, skip_system, threads))
    py = as_map(list_tree_python(awkward, skip_system))
    assert c == py
    assert set(c) == {
        "",
        "2019 三亚 婚礼",
        "deep",
        "deep/er",
        "deep/er/est",
        "empty",
        "empty/nested",
        os.fsdecode(b"caf\xe9"),
    }


@pytest.mark.parametrize("lister", [list_tree, list_tree_python])
def test_only_regular_files_with_their_size_and_nanosecond_mtime(awkward, lister):
    by_rel = as_map(lister(awkward, skip_system))
    names, sizes, mtimes, error, errors = by_rel[""]
    assert names == ["a.jpg"]  # not the symlink, not the FIFO
    assert mtimes == [1_500_000_000_123_456_789] and sizes == [os.path.getsize(awkward / "a.jpg")]
    assert by_rel["2019 三亚 婚礼"][:2] == (["IMG_0001.JPG", "notes.txt"], [1234, len(b"\xff\xd8\xff photo")])
    assert by_rel[os.fsdecode(b"caf\xe9")][0] == [os.fsdecode(b"na\xefve.jpg")]  # surrogate-escaped, as os does
    assert "deep/loop" not in by_rel and error is None and errors == []


@pytest.mark.parametrize("lister", [list_tree, list_tree_python])
def test_names_are_sorted_bytewise(tmp_path, lister):
    for name in ("b.jpg", "A.jpg", "中.jpg", "a.jpg", "Z.jpg", "é.jpg"):
        write(tmp_path / name)
    [folder] = lister(tmp_path, skip_system)
    assert folder.file_names() == sorted(folder.file_names(), key=os.fsencode)
    assert len(folder) == 6


def too_deep(base) -> tuple[str, str]:
    """A folder whose absolute path is longer than PATH_MAX, built with relative steps; a photo inside.
    Neither listing can open it by path: a real error, even for root."""
    fd = os.open(base, os.O_RDONLY)
    rel = []
    try:
        while len(os.fsencode(base)) + sum(len(p) + 1 for p in rel) < 4200:
            part = "d" * 200
            os.mkdir(part, dir_fd=fd)
            nfd = os.open(part, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            rel.append(part)
        with open(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write(b"x")
    finally:
        os.close(fd)
    return "/".join(rel[:-1]), "/".join(rel)


@pytest.mark.parametrize("lister", [list_tree, list_tree_python])
def test_a_folder_that_cannot_be_opened_is_reported_and_the_rest_listed(tmp_path, lister):
    write(tmp_path / "fine" / "a.jpg")
    _, unreachable = too_deep(tmp_path)
    by_rel = as_map(lister(tmp_path, skip_system))
    assert by_rel["fine"][0] == ["a.jpg"]
    names, _, _, error, _ = by_rel[unreachable]
    assert names == [] and error is not None  # ENAMETOOLONG: listed as failed, never as empty


@needs_c
def test_an_exception_in_dir_ok_stops_the_c_listing_and_propagates(awkward):
    def refuse(name: str) -> bool:
        if name == "er":
            raise RuntimeError("bad rule")
        return True

    with pytest.raises(RuntimeError, match="bad rule"):
        list_tree(awkward, refuse, 2)


@needs_c
def test_a_big_tree_lists_every_file_once(tmp_path):
    for d in range(40):
        for i in range(50):
            write(tmp_path / f"{d:02d}" / f"{i:03d}.jpg", b"x" * (d + i))
    folders = list_tree(tmp_path, skip_system, 4)
    assert sum(len(f) for f in folders) == 2000
    assert as_map(folders) == as_map(list_tree_python(tmp_path, skip_system))


def test_the_backend_in_use_is_named():
    assert listing.BACKEND == ("C (parallel)" if listing._fastwalk else "Python")


@pytest.mark.parametrize("lister", [list_tree, list_tree_python])
def test_the_listing_reports_progress_as_it_goes(tmp_path, lister):
    for d in range(5):
        folder = tmp_path / f"{d}"
        folder.mkdir()
        for i in range(1000):
            (folder / f"{i}.jpg").write_bytes(b"")
    heard: list[int] = []
    lister(tmp_path, skip_system, on_listed=heard.append)
    assert len(heard) == 2 and heard == sorted(heard) and 2000 <= heard[0] and heard[-1] <= 5000


@needs_c
def test_an_exception_in_the_progress_callback_propagates(tmp_path):
    for i in range(2500):
        (tmp_path / f"{i}.jpg").write_bytes(b"")

    def stop(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list_tree(tmp_path, skip_system, 2, stop)
