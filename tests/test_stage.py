"""The stage on a real LMDB: round trip, cn_clip's format, map growth, readers beside the writer, a full
disk, permissions, and the start-up consistency check against a real catalog."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import textwrap
import threading
from io import BytesIO
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image

import photod.config
from photod.errors import DiskFullError, StageError
from photod.ingest.ingester import check_stage_consistency
from photod.store.catalog import PhotoMeta
from photod.store.stage import Stage

REPO = Path(__file__).resolve().parent.parent


def _jpeg(seed: int, size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    if noise:  # incompressible: makes entries big enough to fill a small map
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    else:
        arr = np.full((size[1], size[0], 3), rng.integers(0, 256, 3), dtype=np.uint8)
    buf = BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_round_trip(data_dir):
    jpegs = {1: _jpeg(1), 2: _jpeg(2, (30, 40)), 1234567: _jpeg(3)}
    with Stage(data_dir) as stage:
        stage.put_many(jpegs)
        assert stage.keys() == {1, 2, 1234567}
        assert len(stage) == 3
        assert 2 in stage and np.int64(2) in stage
        assert 3 not in stage and "2" not in stage and 2.0 not in stage
        assert stage.get_jpeg(2) == jpegs[2]
        img = stage.get_image(2)
        assert img.mode == "RGB" and img.size == (30, 40)
        assert stage.get_jpeg(99) is None and stage.get_image(99) is None
        stage.put_many({2: jpegs[1]})  # overwrite, as a retried photo does
        assert stage.get_jpeg(2) == jpegs[1] and len(stage) == 3
        assert stage.delete_many([2, 99]) == 1
        assert stage.keys() == {1, 1234567}
    with Stage(data_dir) as again:  # durable across reopen
        assert again.get_jpeg(1234567) == jpegs[1234567]


def test_values_are_chinese_clip_format(data_dir):
    jpeg = _jpeg(7, (50, 30))
    with Stage(data_dir) as stage:
        stage.put_many({42: jpeg})
    # Read it exactly as cn_clip's LMDB dataset does.
    env = lmdb.open(str(data_dir / "stage"), readonly=True, create=False, lock=False, readahead=False, meminit=False)
    with env.begin(buffers=True) as txn:
        image_b64 = txn.get("{}".format(42).encode("utf-8")).tobytes()
    env.close()
    assert image_b64 == base64.urlsafe_b64encode(jpeg)
    image = Image.open(BytesIO(base64.urlsafe_b64decode(image_b64.decode(encoding="utf8", errors="ignore"))))
    assert image.size == (50, 30) and image.format == "JPEG"


def test_map_grows_when_full(data_dir):
    with Stage(data_dir, map_size=64 * 1024) as stage:
        start = stage.env.info()["map_size"]
        items = {i: _jpeg(i, (160, 120), noise=True) for i in range(30)}
        assert sum(len(v) for v in items.values()) > 8 * start  # far beyond the initial map
        stage.put_many(items)
        assert stage.env.info()["map_size"] > start
        assert stage.keys() == set(items)
        assert all(stage.get_jpeg(i) == items[i] for i in items)
        stage.put_many({100 + i: v for i, v in items.items()})  # grows again, in a later transaction
        assert len(stage) == 60


_READER = textwrap.dedent("""
    import sys
    from photod.store.stage import Stage
    stage = Stage(sys.argv[1], readonly=True)
    print("open", sorted(stage.keys()), flush=True)
    sys.stdin.readline()
    print("later", sorted(stage.keys()), len(stage.get_jpeg(7) or b""), flush=True)
""")


def test_reader_process_sees_writes_while_writer_holds_it_open(data_dir):
    with Stage(data_dir, map_size=64 * 1024) as stage:
        stage.put_many({1: _jpeg(1)})
        reader = subprocess.Popen(
            [sys.executable, "-c", _READER, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            assert reader.stdout.readline().split(" ", 1) == ["open", "[1]\n"]
            big = {i: _jpeg(i, (160, 120), noise=True) for i in range(2, 30)}
            stage.put_many(big)  # grows the map under the reader's feet
            reader.stdin.write("go\n")
            reader.stdin.flush()
            line = reader.stdout.readline().split()
        finally:
            reader.stdin.close()
            assert reader.wait(timeout=30) == 0
    assert line[0] == "later"
    assert int(line[-1]) == len(big[7])
    assert line[1].startswith("[1,") and line[-2] == "29]"


def test_readonly_stage(data_dir):
    with pytest.raises(StageError, match="there is no stage at"):
        Stage(data_dir, readonly=True)
    with Stage(data_dir) as stage:
        stage.put_many({5: _jpeg(5)})
    with Stage(data_dir, readonly=True) as reader:
        assert reader.keys() == {5}
        with pytest.raises(StageError, match="read-only"):
            reader.put_many({6: _jpeg(6)})


def test_permissions(tmp_path):
    data_dir = tmp_path / "fresh-data"
    with Stage(data_dir) as stage:
        stage.put_many({1: _jpeg(1)})
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "stage").stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "stage" / "data.mdb").stat().st_mode) & 0o077 == 0


def test_ignores_keys_that_are_not_photo_ids(data_dir):
    with Stage(data_dir) as stage:
        stage.put_many({3: _jpeg(3)})
        with stage.env.begin(write=True) as txn:
            txn.put(b"num_images", b"1")  # what a cn_clip dataset carries beside the images
        assert stage.keys() == {3}


def test_full_disk_is_a_clear_error_and_loses_nothing(tiny_disk):
    data_dir = tiny_disk / "photod"
    first = _jpeg(1, (100, 80), noise=True)
    with Stage(data_dir, map_size=16 << 20) as stage:
        stage.put_many({1: first})
        big = {i: _jpeg(i, (400, 300), noise=True) for i in range(2, 12)}
        with pytest.raises(DiskFullError) as info:
            stage.put_many(big)
    assert str(data_dir) in str(info.value) and "free some space" in str(info.value)
    with Stage(data_dir, readonly=True) as reader:
        assert reader.get_jpeg(1) == first  # the earlier, committed batch is intact


# ---- consistency with the catalog ----------------------------------------------------------------------


def _rows(catalog, folder: Path, names: list[str]) -> dict[str, int]:
    folder.mkdir(exist_ok=True)
    root = catalog.add_root(photod.config.make_root(folder))
    catalog.set_root_online(root.id)
    ids = {}
    for name in names:
        (folder / name).write_bytes(b"x")
        ids[name], _ = catalog.upsert_file(root.id, name, 1, 1)
    return ids


def test_consistency_check_repairs_both_kinds_of_mismatch(catalog, data_dir, tmp_path):
    ids = _rows(catalog, tmp_path / "root", ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    a, b, c, d = (ids[n] for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"))
    with Stage(data_dir) as stage:
        stage.put_many({a: _jpeg(1), b: _jpeg(2), c: _jpeg(3)})
        for pid in (a, b, c):
            catalog.mark_staged(pid, PhotoMeta(width=64, height=48), f"hash{pid}")
        stage.delete_many([c])  # a row claiming an entry that is gone
        stage.put_many({d: _jpeg(4), 9999: _jpeg(5)})  # killed before marking d; an entry with no row
        assert check_stage_consistency(catalog, stage) == (2, 1)
        assert stage.keys() == {a, b}
        assert catalog.photo(c)["state"] == "new" and catalog.photo(c)["staged_at"] is None
        assert catalog.photo(a)["state"] == "staged"
        assert catalog.staged_ids() == stage.keys()
        assert check_stage_consistency(catalog, stage) == (0, 0)


def test_consistency_keeps_entries_of_deleted_and_offline_photos(catalog, data_dir, tmp_path):
    ids = _rows(catalog, tmp_path / "root", ["a.jpg", "b.jpg"])
    with Stage(data_dir) as stage:
        stage.put_many({pid: _jpeg(pid) for pid in ids.values()})
        for pid in ids.values():
            catalog.mark_staged(pid, PhotoMeta(), f"h{pid}")
        catalog.mark_deleted([ids["a.jpg"]])  # in its grace period: may come back as a move
        catalog.set_root_offline(catalog.photo(ids["b.jpg"])["root_id"])
        assert check_stage_consistency(catalog, stage) == (0, 0)
        assert stage.keys() == set(ids.values())


def test_stage_is_an_lmdb_directory_as_cn_clip_expects(data_dir):
    with Stage(data_dir) as stage:
        stage.put_many({1: _jpeg(1)})
    names = sorted(os.listdir(data_dir / "stage"))
    assert names == ["data.mdb", "lock.mdb"]


def test_two_handles_in_one_process_share_the_environment(data_dir):
    """A daemon thread and a finetune (or a test) in one process: closing one handle leaves the other's
    environment open and its locks in place."""
    writer = Stage(data_dir)
    writer.put_many({1: b"\xff\xd8one"})
    reader = Stage(data_dir, readonly=True)
    assert reader.env is writer.env and reader.get_jpeg(1) == b"\xff\xd8one"
    reader.close()
    writer.put_many({2: b"\xff\xd8two"})
    again = Stage(data_dir, readonly=True)
    assert again.keys() == {1, 2}
    with pytest.raises(StageError, match="read-only"):
        again.put_many({3: b"x"})
    again.close()
    writer.close()
    fresh = Stage(data_dir, readonly=True)
    assert fresh.keys() == {1, 2}
    fresh.close()


def _mapped_kib(path: Path) -> int:
    """KiB of `path` resident in this process's mappings of it (Rss in /proc/self/smaps)."""
    target, total, inside = os.path.realpath(path), 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header line
            inside = len(fields) >= 6 and fields[5] == target
        elif inside and fields and fields[0] == "Rss:":
            total += int(fields[1])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc/self/smaps and madvise")
def test_reading_every_photo_leaves_little_of_the_stage_mapped(data_dir):
    """The indexer reads each staged photo once: the map pages it read must not stay resident, or the daemon's
    RSS grows with the library (issue #11). Values read again after their pages were dropped are intact."""
    items = {i: _jpeg(i, (200, 150), noise=True) for i in range(240)}
    staged_kib = sum(len(base64.urlsafe_b64encode(v)) for v in items.values()) // 1024
    assert staged_kib > 4 * 1024
    with Stage(data_dir) as stage:
        for start in range(0, len(items), 40):
            stage.put_many({i: items[i] for i in range(start, start + 40)})
        for _ in range(2):
            assert all(stage.get_jpeg(i) == items[i] for i in items)
            assert _mapped_kib(stage.path / "data.mdb") < staged_kib // 8
        assert stage.keys() == set(items) and 7 in stage


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc/self/smaps and madvise")
def test_pages_mapped_around_the_values_read_are_swept_too(data_dir):
    """A page fault maps the pages around it too (the kernel's fault-around, large folios): pages of photos
    not read, or read and dropped before, come back mapped. A read drops the whole map's pages, not only
    its value's. Here other pages are mapped by reading through LMDB directly, as fault-around would."""
    items = {i: _jpeg(i, (200, 150), noise=True) for i in range(150)}
    with Stage(data_dir) as stage:
        stage.put_many(items)
        mdb = stage.path / "data.mdb"
        with stage.env.begin(buffers=True) as txn:  # maps every entry's pages, and drops none
            assert all(bytes(txn.get(str(i).encode())) for i in items)
        mapped_before = _mapped_kib(mdb)
        assert mapped_before > 4 * 1024
        assert stage.get_jpeg(3) == items[3]
        assert _mapped_kib(mdb) < mapped_before // 16
        assert all(stage.get_jpeg(i) == items[i] for i in items)  # swept pages read back intact


def test_map_grows_while_other_threads_read(data_dir):
    """The daemon's ingest thread grows the map while the indexer's decode workers read: growing waits for
    their transactions (LMDB unmaps the old map), and every read returns the right bytes."""
    items = {i: _jpeg(i, (160, 120), noise=True) for i in range(160)}
    errors: list[BaseException] = []
    with Stage(data_dir, map_size=64 * 1024) as stage:
        stage.put_many({0: items[0]})
        written = threading.Event()

        def read() -> None:
            try:
                while not written.is_set():
                    for i in list(stage.keys()):
                        assert stage.get_jpeg(i) == items[i]
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for t in readers:
            t.start()
        start = stage.env.info()["map_size"]
        for i in range(1, len(items), 8):
            stage.put_many({j: items[j] for j in range(i, min(i + 8, len(items)))})
        written.set()
        for t in readers:
            t.join(30)
        assert not errors and stage.env.info()["map_size"] >= 16 * start
        assert all(stage.get_jpeg(i) == items[i] for i in items)
