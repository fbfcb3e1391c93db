"""Faults photod must survive without losing or duplicating a photo, a stage entry or a vector.

Short by default (CI). The long run, which prints the figures for the README:

    PHOTOD_FAULT_TRIALS=40 PHOTOD_FAULT_SCALE=10 PHOTOD_FAULT_REPORT=/tmp/faults.json \\
        nice -n 10 python -m pytest -s -p no:cacheprovider tests/test_faults.py tests/test_bad_input.py \\
        tests/test_security.py
    python -m tests.support.faultkit /tmp/faults.json

Every randomized test prints its seed; PHOTOD_FAULT_SEED=S replays it. Related faults covered elsewhere:
kill -9 between and inside index saves (tests/test_index.py), kill -9 of a bare ingest (tests/test_ingest.py),
inotify watch exhaustion falling back to polling (tests/test_watcher.py, a real ENOSPC from inotify_add_watch
is simulated there: lowering fs.inotify.max_user_watches would disturb every other process on the machine).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from photod.config import load_config
from photod.errors import DiskFullError, ModelError
from photod.index.vectorindex import VectorIndex
from photod.model import bundle as bundles
from photod.model import registry
from photod.roots.presence import check_root
from photod.roots.scanner import reconcile
from photod.store import wordsearch
from photod.store.catalog import Catalog
from photod.store.stage import Stage
from tests.support import faultkit, oskit
from tests.support.daemonkit import (
    DaemonThread,
    make_photos,
    start_daemon_process,
    start_daemon_up,
    starts_logged,
    wait_for,
)

pytest.importorskip("onnx", reason="the tiny test models are built with onnx")


@pytest.fixture(scope="module", autouse=True)
def _print_figures():
    t0 = time.monotonic()
    yield
    faultkit.record(seconds=time.monotonic() - t0)
    print("\nfault figures so far:\n" + faultkit.markdown(faultkit.FIGURES))


def _stop(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=90) == 0, log.read_text()[-3000:]


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


# ---- kill -9 at random points --------------------------------------------------------------------------


def test_kill_9_during_ingest_encoding_index_saves_and_model_switches(tmp_path, data_dir):
    """Random kills while the daemon stages, encodes, saves its index and switches between two models
    (`photod model use` while it runs); afterwards, and after a final run, everything agrees."""
    rng = faultkit.seeded("kill -9 during ingest/encode/switch")
    per_trial = 50  # per trial, not scaled: more trials, not bigger ones, so kills also land in encoding
    root = tmp_path / "library"
    n = 0
    faultkit.install_tiny(data_dir, "alpha", seed=1)
    faultkit.install_tiny(data_dir, "beta", seed=7, activate=False)
    config = faultkit.write_config(tmp_path, [root], workers={"batch_size": 8})
    log = tmp_path / "daemon.log"
    kills = switches = 0
    for trial in range(faultkit.trials()):
        # New photos every trial (the first ones and a burst later), so each kill lands in real work:
        # staging, encoding, index saves, or the re-encoding that follows a switch.
        faultkit.distinct_photos(root / f"t{trial:03d}", per_trial, size=(640, 480), start=n)
        n += per_trial
        # Kill points are counted from the end of start-up, so they fall in the work, not in imports.
        proc = start_daemon_up(config, data_dir, log)
        try:
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.3, 2.5))
                target = rng.choice(["alpha", "beta"])
                done = faultkit.photod(config, data_dir, "model", "use", target)
                assert done.returncode == 0, done.stderr
                switches += 1
            time.sleep(rng.uniform(0.2, 3.0))
        finally:
            _kill(proc)
        kills += 1
        print(f"trial {trial}: killed; counts {faultkit.check_data_dir(data_dir)}")
    starts = starts_logged(log)
    proc = start_daemon_process(config, data_dir, log)
    try:
        wait_for(
            lambda: starts_logged(log) > starts and faultkit.indexed_for_active(data_dir, n),
            timeout=240,
            what="a run to completion",
        )
    finally:
        _stop(proc, log)
    counts = faultkit.check_data_dir(data_dir, settled=True)
    rows = list(faultkit.iter_photo_rows(data_dir))
    hashes = {r["content_hash"] for r in rows}
    assert len(rows) == n and counts["indexed"] == n
    assert len(hashes) == n  # every photo once
    with Catalog.in_data_dir(data_dir) as cat:
        model_id = registry.active_bundle(data_dir).image_id
        per_photo = cat.scalar(
            "SELECT max(c) FROM (SELECT count(*) c FROM vectors WHERE model_id = ? GROUP BY photo_id)", (model_id,)
        )
    assert per_photo == 1
    assert "Traceback" not in log.read_text()
    faultkit.record(
        trials=faultkit.trials(),
        kills=kills,
        photos=n,
        lost=n - len(rows),
        duplicates=len(rows) - len(hashes),
        other_faults=switches,
    )


# ---- full disk -----------------------------------------------------------------------------------------


def _fill(folder: Path, keep_free: int = 0) -> Path:
    """Fill the filesystem holding `folder`, leaving about `keep_free` bytes."""
    filler = folder / "filler"
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize - keep_free
    with open(filler, "wb") as f:
        with contextlib.suppress(OSError):
            while free > 0:
                chunk = min(free, 1 << 20)
                f.write(b"\0" * chunk)
                free -= chunk
            f.flush()
    return filler


def test_index_save_on_a_full_disk_raises_disk_full_and_keeps_the_previous_index(tmp_path):
    with oskit.tmpfs(tmp_path / "small", "8m") as data_dir:
        with Catalog.in_data_dir(data_dir) as cat:
            rng = np.random.default_rng(0)
            index = VectorIndex(data_dir, "m1")
            index._build(cat, "exact")
            vecs = rng.standard_normal((200, 64)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            index.add(np.arange(1, 201), vecs)
            assert index.save(force=True)
            before = (index.path.read_bytes(), index.meta_path.read_bytes())
            index.add(np.arange(201, 2201), np.repeat(vecs, 10, axis=0))
            _fill(data_dir)
            with pytest.raises(DiskFullError) as err:
                index.save()
            assert str(data_dir) in err.value.message and "intact" in err.value.hint
            assert (index.path.read_bytes(), index.meta_path.read_bytes()) == before
            assert not list(index.path.parent.glob(".*.tmp")), "temp files left on the full disk"
            (data_dir / "filler").unlink()
            assert index.save()
            again = VectorIndex(data_dir, "m1")
            assert again._read() is not None
    faultkit.record(disk_full=1)


def test_full_disk_while_staging_and_saving_then_everything_completes(tmp_path):
    """The daemon on a data dir whose disk fills up: a clear error naming the data dir in the log, the daemon
    stays up, the previous index stays intact, and once space is back everything completes."""
    root = tmp_path / "library"
    make_photos(root, 40, size=(320, 240))
    with oskit.tmpfs(tmp_path / "small", "64m") as data_dir:
        faultkit.install_tiny(data_dir, "alpha", seed=1)
        config = faultkit.write_config(tmp_path, [root])
        log = tmp_path / "daemon.log"
        proc = start_daemon_process(config, data_dir, log)
        try:
            wait_for(lambda: faultkit.indexed_for_active(data_dir, 40), timeout=120, what="first 40 indexed")
            index_file = next((data_dir / "index").glob("*.faiss"))
            # More photos arrive while the disk is full.
            filler = _fill(data_dir, keep_free=64 << 10)
            before = index_file.read_bytes()
            make_photos(root / "more", faultkit.scale(60), prefix="more", size=(320, 240))
            wait_for(lambda: "is full" in log.read_text(), timeout=60, what="the disk-full message")
            text = log.read_text()
            assert f"the data dir {data_dir}" in text and "Traceback" not in text
            assert proc.poll() is None, "the daemon died of a full disk"
            assert index_file.read_bytes() == before
            faultkit.check_data_dir(data_dir)
            filler.unlink()  # space is back
            total = 40 + faultkit.scale(60)
            wait_for(
                lambda: faultkit.indexed_for_active(data_dir, total),
                timeout=120,
                what="everything indexed once space is back",
            )
        finally:
            _stop(proc, log)
        faultkit.check_data_dir(data_dir, settled=True)
    faultkit.record(disk_full=1, photos=total)


# ---- roots that vanish, hang, or come back elsewhere ----------------------------------------------------


def test_root_vanishing_in_the_middle_of_a_scan_deletes_nothing(tmp_path, catalog):
    from photod.config import make_root

    root_path = tmp_path / "drive"
    per_dir = 200
    for d in range(10):
        folder = root_path / f"d{d}"
        folder.mkdir(parents=True)
        for i in range(per_dir):
            (folder / f"p{i}.jpg").write_bytes(b"x" * (i + 1))
    root = catalog.add_root(make_root(root_path))
    catalog.set_root_online(root.id, os.stat(root_path).st_dev)
    first = reconcile(catalog, catalog.root(root.id), present=lambda: True)
    assert first.new == 10 * per_dir
    # Unplug the drive in the middle of the next scan, while the listing threads are reading folders: the
    # listing asks which subfolders to enter as it goes, and the third question pulls the drive.
    away = tmp_path / "unplugged"
    asked = []
    import photod.roots.scanner as scanner_mod

    real_list_tree = scanner_mod.list_tree

    def list_tree_unplugging(path, dir_ok, threads, on_listed=None):
        def ok(name: str) -> bool:
            asked.append(name)
            if len(asked) == 3:
                root_path.rename(away)
            return dir_ok(name)

        return real_list_tree(path, ok, threads, on_listed)

    scanner_mod.list_tree = list_tree_unplugging
    try:
        r = catalog.root(root.id)
        report = reconcile(catalog, r, present=lambda: check_root(r, 10 * per_dir).online)
    finally:
        scanner_mod.list_tree = real_list_tree
    assert len(asked) == 10 and report.failed_paths  # folders after the unplug could not be read
    assert not report.root_present and report.deleted == 0
    assert catalog.counts()["deleted"] == 0 and catalog.counts()["total"] == 10 * per_dir
    away.rename(root_path)  # plugged back in: a full scan finds everything unchanged
    again = reconcile(catalog, catalog.root(root.id), present=lambda: True)
    assert (again.deleted, again.new, again.unchanged) == (0, 0, 10 * per_dir)
    faultkit.record(other_faults=1)


def test_a_hung_share_is_offline_within_the_timeout_and_does_not_stall_other_roots(tmp_path, catalog):
    """A share whose stat never returns (a hard NFS mount of a sleeping NAS): the presence check answers
    'offline' after its timeout, and a healthy root checked at the same time answers at once."""
    from photod.config import make_root

    hung, healthy = tmp_path / "nas", tmp_path / "usb"
    make_photos(hung, 2)
    make_photos(healthy, 2)
    release = threading.Event()

    def hanging_stat(path: str):
        if path.startswith(str(hung)):
            release.wait(30)  # blocks like a read on a dead share
        return os.stat(path)

    r_hung, r_ok = catalog.add_root(make_root(hung)), catalog.add_root(make_root(healthy))
    results = {}

    def check(name, root):
        t0 = time.monotonic()
        results[name] = (check_root(root, 2, timeout=1.0, stat=hanging_stat), time.monotonic() - t0)

    threads = [threading.Thread(target=check, args=("hung", r_hung)), threading.Thread(target=check, args=("ok", r_ok))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    release.set()
    assert not results["hung"][0].online and "not answering" in results["hung"][0].reason
    assert results["hung"][1] < 3.0
    assert results["ok"][0].online and results["ok"][1] < 0.9
    faultkit.record(other_faults=1)


def test_a_file_that_turns_into_a_fifo_does_not_hang_ingest(tmp_path, data_dir):
    """A path catalogued as a regular file that is a FIFO by the time it is read (an open() on it would block
    forever, as a read from a hung share does): it fails alone, the daemon goes on."""
    from photod.ingest.ingester import Ingester

    root = tmp_path / "library"
    make_photos(root, 5)
    cfg = load_config(faultkit.write_config(tmp_path, [root]))
    with Catalog.in_data_dir(data_dir) as cat, Stage(data_dir) as stage:
        cat.sync_config_roots(cfg.roots)
        r = cat.active_roots()[0]
        cat.set_root_online(r.id)
        reconcile(cat, r, present=lambda: True)
        victim = root / "img_0002.jpg"
        victim.unlink()
        os.mkfifo(victim)
        done = threading.Event()
        result = {}

        def run():
            result["report"] = Ingester(cat, stage).drain()
            done.set()

        threading.Thread(target=run, daemon=True).start()
        assert done.wait(20), "ingest blocked on a FIFO"
        assert result["report"].staged == 4 and result["report"].failed == 1
        row = cat.query("SELECT state, error FROM photos WHERE rel_path = 'img_0002.jpg'")[0]
        assert row["state"] == "failed" and "FIFO" in row["error"] and "img_0002.jpg" in row["error"]
    faultkit.record(other_faults=1, bad_files=1)


def test_drive_remounted_at_a_different_path_deletes_nothing_and_reencodes_nothing(tmp_path, data_dir):
    n = faultkit.scale(30)
    old, new = tmp_path / "media" / "usb0", tmp_path / "media" / "usb1"
    make_photos(old, n)
    faultkit.install_tiny(data_dir, "alpha", seed=1)
    cfg = load_config(faultkit.write_config(tmp_path, [old, new]))
    new.mkdir(parents=True)
    (new / "README.txt").write_text("an empty mount point")  # not empty: present, but holds no photos yet
    with DaemonThread(cfg):
        wait_for(lambda: faultkit.indexed_for_active(data_dir, n), timeout=120, what="first indexing")
    with Catalog.in_data_dir(data_dir) as cat:
        before = {r["content_hash"]: r for r in cat.query("SELECT * FROM photos")}
        model_id = registry.active_bundle(data_dir).image_id
        old_vecs = dict(
            cat.conn.execute(
                "SELECT p.content_hash, v.vector FROM vectors v JOIN photos p"
                " ON p.id = v.photo_id WHERE v.model_id = ?",
                (model_id,),
            ).fetchall()
        )
    # The drive comes back mounted at usb1 (same content, a different path); usb0 is now gone.
    for p in sorted(old.iterdir()):
        os.rename(p, new / p.name)
    old.rmdir()
    with DaemonThread(cfg) as d:
        wait_for(
            lambda: faultkit.counts_of(data_dir)["indexed"] == n and faultkit.counts_of(data_dir)["offline"] == n,
            timeout=120,
            what="the remounted copies to be indexed",
        )
        stats = dict(d.daemon.models.indexer.stats)
    assert stats["encoded"] == 0, "photos of the remounted drive were encoded again"
    with Catalog.in_data_dir(data_dir) as cat:
        c = cat.counts()
        assert c["deleted"] == 0 and c["offline"] == n and c["indexed"] == n
        rows = cat.query(
            "SELECT p.*, r.path AS root FROM photos p JOIN roots r ON r.id = p.root_id WHERE p.state = 'indexed'"
        )
        assert {r["root"] for r in rows} == {str(new)}
        assert {r["content_hash"] for r in rows} == set(before)
        for r in rows:  # the metadata travelled with the copy
            assert (r["width"], r["height"]) == (
                before[r["content_hash"]]["width"],
                before[r["content_hash"]]["height"],
            )
        new_vecs = dict(
            cat.conn.execute(
                "SELECT p.content_hash, v.vector FROM vectors v JOIN photos p"
                " ON p.id = v.photo_id WHERE v.model_id = ? AND p.state = 'indexed'",
                (model_id,),
            ).fetchall()
        )
    assert new_vecs == old_vecs
    faultkit.check_data_dir(data_dir, settled=True)
    faultkit.record(other_faults=1)


# ---- many files ----------------------------------------------------------------------------------------


def test_thousands_of_files_arriving_at_once_are_each_ingested_once(tmp_path, data_dir):
    n = faultkit.scale(1500)  # the long run: 15000
    root = tmp_path / "library"
    root.mkdir()
    config = faultkit.write_config(tmp_path, [root])
    log = tmp_path / "daemon.log"
    proc = start_daemon_process(config, data_dir, log)
    try:
        wait_for(lambda: "watching" in log.read_text(), timeout=60, what="the daemon to watch the root")
        staging = tmp_path / "incoming"
        faultkit.distinct_photos(staging / "burst", n)
        os.rename(staging / "burst", root / "burst")  # all of them appear at once
        wait_for(lambda: faultkit.counts_of(data_dir)["staged"] == n, timeout=600, what=f"{n} staged")
        time.sleep(1.0)  # any duplicate would show up now
        peak = faultkit.peak_rss_mib(proc.pid)
    finally:
        _stop(proc, log)
    counts = faultkit.check_data_dir(data_dir, settled=True)
    rows = list(faultkit.iter_photo_rows(data_dir))
    assert counts["total"] == n == len(rows) == len({r["content_hash"] for r in rows})
    print(f"{n} files at once: daemon peak RSS {peak:.0f} MiB")
    assert peak < 400, f"daemon peak memory {peak:.0f} MiB"
    faultkit.record(photos=n, peak_rss_mib=peak)


_SCAN_CHILD = textwrap.dedent("""
    import sys, time
    from photod.store.catalog import Catalog
    from photod.config import make_root
    from photod.roots.scanner import reconcile
    cat = Catalog(sys.argv[2])
    root = cat.add_root(make_root(sys.argv[1]))
    cat.set_root_online(root.id)
    def hwm():  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    base = hwm()
    t0 = time.monotonic()
    report = reconcile(cat, cat.root(root.id), present=lambda: True)
    print(report.seen, report.new, base, hwm(), round(time.monotonic() - t0, 1))
""")


@pytest.mark.parametrize(
    "n",
    [
        50_000,
        pytest.param(
            1_000_000,
            marks=[
                pytest.mark.long,
                pytest.mark.skipif(
                    not faultkit.long_run(),
                    reason="the long fault run only (PHOTOD_FAULT_TRIALS > 3 or PHOTOD_FAULT_SCALE > 1)",
                ),
            ],
        ),
    ],
)
def test_a_tree_with_many_entries_is_scanned_in_bounded_memory(tmp_path, n):
    root = tmp_path / "huge"
    faultkit.wide_tree(root, n)
    done = subprocess.run(
        [sys.executable, "-c", _SCAN_CHILD, str(root), str(tmp_path / "catalog.db")],
        capture_output=True,
        text=True,
        timeout=3000,
        cwd=faultkit.REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen, new, base_kib, peak_kib, seconds = done.stdout.split()
    assert int(seen) == n and int(new) == n
    peak = int(peak_kib) / 1024
    grew = (int(peak_kib) - int(base_kib)) / 1024
    print(f"scan of {n} entries: {seconds}s, peak RSS {peak:.0f} MiB ({grew:.0f} MiB above start)")
    # Bound: the scan keeps the catalog's (path, size, mtime, id, state) of every known file plus the list
    # of new entries; about 1 KiB per entry is far above that and far below holding file contents.
    assert grew < max(200, n / 1024), f"scan grew {grew:.0f} MiB for {n} entries"
    faultkit.record(peak_tree_entries=n, peak_scan_rss_mib=peak)


# ---- corruption ----------------------------------------------------------------------------------------


def test_corrupted_index_file_is_rebuilt_from_the_catalog_by_the_daemon(tmp_path, data_dir):
    n = 30
    root = tmp_path / "library"
    make_photos(root, n)
    faultkit.install_tiny(data_dir, "alpha", seed=1)
    cfg = load_config(faultkit.write_config(tmp_path, [root]))
    with DaemonThread(cfg):
        wait_for(lambda: faultkit.indexed_for_active(data_dir, n), timeout=120, what="indexing")
    index_file = next((data_dir / "index").glob("*.faiss"))
    data = bytearray(index_file.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0x5A
    index_file.write_bytes(bytes(data))
    with DaemonThread(cfg) as d:
        wait_for(
            lambda: getattr(getattr(d.daemon, "models", None), "index", None) is not None,
            timeout=60,
            what="the model to load",
        )
        assert d.daemon.models.index.rebuilt
        assert len(d.daemon.models.index) == n
        d.daemon.models.index.save(force=True)
    faultkit.check_data_dir(data_dir, settled=True)
    faultkit.record(other_faults=1)


def test_corrupted_stage_entry_is_staged_again_from_the_original(tmp_path, data_dir):
    n = 12
    root = tmp_path / "library"
    make_photos(root, n)
    cfg = load_config(faultkit.write_config(tmp_path, [root]))
    with DaemonThread(cfg):  # no model yet: staging only
        wait_for(lambda: faultkit.counts_of(data_dir)["staged"] == n, timeout=60, what="staging")
    with Catalog.in_data_dir(data_dir) as cat:
        victim = cat.query("SELECT id FROM photos ORDER BY id LIMIT 1 OFFSET 5")[0]["id"]
    with Stage(data_dir) as stage:
        stage.put_many({victim: b"\xff\xd8\xff\xe0 this is not a JPEG any more"})
    faultkit.install_tiny(data_dir, "alpha", seed=1)  # encoding now reads the stage
    with DaemonThread(cfg) as d:
        wait_for(lambda: faultkit.indexed_for_active(data_dir, n), timeout=120, what="indexing")
        assert d.daemon.models.indexer.stats["unstaged"] >= 1
    with Stage(data_dir, readonly=True) as stage:
        import io

        from PIL import Image

        Image.open(io.BytesIO(stage.get_jpeg(victim))).verify()  # staged again from the original
    faultkit.check_data_dir(data_dir, settled=True)
    faultkit.record(other_faults=1)


def test_corrupted_or_mismatched_bundle_is_refused_and_the_old_model_keeps_serving(tmp_path, data_dir):
    n = 10
    root = tmp_path / "library"
    make_photos(root, n)
    faultkit.install_tiny(data_dir, "alpha", seed=1)
    faultkit.install_tiny(data_dir, "broken", seed=3, activate=False)
    image = registry.models_dir(data_dir) / "broken" / bundles.IMAGE_FILE
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0xFF
    image.write_bytes(bytes(data))
    # A bundle whose manifest lies about the model (embedding size 16, graphs give 8).
    src = tmp_path / "liar"
    from tests.support.modelkit import tiny_bundle

    tiny_bundle(src, name="liar", seed=5)
    import json

    manifest = json.loads((src / bundles.MANIFEST).read_text())
    manifest["embed_dim"] = 16
    (src / bundles.MANIFEST).write_text(json.dumps(manifest))
    config = faultkit.write_config(tmp_path, [root])
    cfg = load_config(config)
    with DaemonThread(cfg):
        wait_for(lambda: faultkit.indexed_for_active(data_dir, n), timeout=120, what="indexing")
        refused = faultkit.photod(config, data_dir, "model", "use", "broken")
        assert refused.returncode != 0 and "broken" in refused.stderr and "Traceback" not in refused.stderr
        assert registry.active_name(data_dir) == "alpha"
        with pytest.raises(ModelError):
            registry.install_bundle(src, data_dir, "liar")
        assert not (registry.models_dir(data_dir) / "liar").exists()
        found = faultkit.photod(config, data_dir, "search", "海边", "--json")
        assert found.returncode == 0, found.stderr
    faultkit.record(other_faults=2)


# ---- readers during writes -----------------------------------------------------------------------------


def test_readers_see_no_lock_errors_and_no_half_written_results_while_the_daemon_writes(tmp_path, data_dir):
    from photod.search.finder import Query, find
    from photod.search.searcher import Searcher

    n = faultkit.scale(120)
    root = tmp_path / "library"
    make_photos(root, n, size=(480, 360))
    faultkit.install_tiny(data_dir, "alpha", seed=1)
    config = faultkit.write_config(tmp_path, [root], workers={"batch_size": 4})
    log = tmp_path / "daemon.log"
    errors: list[str] = []
    reads = {"search": 0, "catalog": 0}
    stop = threading.Event()

    def tui_like_reader():
        while not stop.is_set():
            try:
                with Catalog.in_data_dir(data_dir) as cat:  # as the TUI opens it
                    c = cat.counts()
                    rows = wordsearch.search_name(cat, None, limit=50)
                    assert all(r["state"] in ("new", "staged", "indexed", "failed") for r in rows)
                    assert c["total"] <= n
                reads["catalog"] += 1
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(f"catalog: {type(exc).__name__}: {exc}")
            time.sleep(0.02)

    def searcher():
        while not stop.is_set():
            try:
                with Searcher(data_dir) as s:
                    for _ in range(5):
                        query = Query(text="海边的日落", k=20, show_all=True)
                        outcome = find(
                            query, lambda: contextlib.nullcontext(s.catalog), lambda: contextlib.nullcontext(s)
                        )
                        ids = [r["id"] for r in outcome.results]
                        assert len(ids) == len(set(ids)), "a photo twice in one result"
                        assert all(r["path"] for r in outcome.results)
                        reads["search"] += outcome.fallback is None  # searched by meaning
            except ModelError:
                pass  # no model serving yet
            except Exception as exc:  # noqa: BLE001
                errors.append(f"search: {type(exc).__name__}: {exc}")
            time.sleep(0.05)

    proc = start_daemon_process(config, data_dir, log)
    wait_for(lambda: (data_dir / "catalog.db").exists(), timeout=30, what="the catalog")
    readers = [threading.Thread(target=tui_like_reader), threading.Thread(target=searcher)]
    for t in readers:
        t.start()
    try:
        wait_for(lambda: faultkit.indexed_for_active(data_dir, n), timeout=240, what="indexing under readers")
    finally:
        stop.set()
        for t in readers:
            t.join(30)
        _stop(proc, log)
    assert not errors, errors[:5]
    assert reads["search"] > 0 and reads["catalog"] > 10, reads
    faultkit.check_data_dir(data_dir, settled=True)
