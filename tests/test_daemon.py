"""The daemon end to end, on real folders with real watchers: issue 2's acceptance."""

from __future__ import annotations

import io
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from photod.config import DEFAULT_INCLUDE
from photod.store.catalog import Catalog
from photod.store.stage import Stage
from tests.support.daemonkit import (
    DaemonThread,
    counts,
    load,
    make_photos,
    photod_cmd,
    settled,
    start_daemon_process,
    start_daemon_up,
    wait_for,
    write_config,
)

pillow_heif.register_heif_opener()


def pillow_can_decode(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.load()
        return True
    except Exception:  # noqa: BLE001 - the definition of "Pillow can decode it"
        return False


def is_photo_name(path: Path) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(path.name.lower(), pat) for pat in DEFAULT_INCLUDE)


def staged_image(data_dir: Path, photo_id: int) -> Image.Image:
    with Stage(data_dir, readonly=True) as stage:
        return stage.get_image(photo_id)


def rows_by_path(data_dir: Path) -> dict[str, dict]:
    with Catalog.in_data_dir(data_dir) as cat:
        return {r["rel_path"]: r for r in cat.query("SELECT * FROM photos")}


def small(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((24, 24), Image.Resampling.BILINEAR), dtype=np.float32)


# ---- exif-samples copied into a watched folder ---------------------------------------------------------


def test_exif_samples_copied_into_a_running_daemon(samples, tmp_path, data_dir):
    root = tmp_path / "library"
    root.mkdir()
    cfg = load(write_config(tmp_path, [root]))
    photos = [p for p in samples.rglob("*") if p.is_file() and is_photo_name(p)]
    decodable = {str(p.relative_to(samples)) for p in photos if pillow_can_decode(p)}
    broken = {str(p.relative_to(samples)) for p in photos} - decodable
    assert len(decodable) > 80
    # Every sample decodes in current Pillow, so the copy also brings files that cannot be photos.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "notes.jpg").write_text("a text file named like a photo")
    (extra / "empty.heic").write_bytes(b"")
    (extra / "cut.jpg").write_bytes((samples / "jpg/Canon_40D.jpg").read_bytes()[:3000])
    broken |= {"extra/notes.jpg", "extra/empty.heic", "extra/cut.jpg"}

    with DaemonThread(cfg):
        time.sleep(0.5)  # the daemon is watching an empty folder
        shutil.copytree(samples, root / "samples")
        shutil.copytree(extra, root / "samples" / "extra")
        wait_for(settled(data_dir, len(photos) + 3), timeout=180, what="every sample photo to be ingested")

    rows = {k.removeprefix("samples/"): v for k, v in rows_by_path(data_dir).items()}
    assert {k for k, r in rows.items() if r["state"] == "staged"} == decodable
    assert {k for k, r in rows.items() if r["state"] == "failed"} == broken
    assert all(rows[k]["error"] and len(rows[k]["error"]) > 10 for k in broken)
    with Stage(data_dir, readonly=True) as stage:
        assert stage.keys() == {rows[k]["id"] for k in decodable}

    canon = rows["jpg/Canon_40D.jpg"]
    assert canon["taken_at"] == "2008-05-30T15:56:01"
    assert canon["camera_make"] == "Canon" and canon["camera_model"] == "Canon EOS 40D"
    gps = [rows[k] for k in decodable if k.startswith("jpg/gps/")]
    assert len(gps) >= 8
    for row in gps:  # Nikon Coolpix photos taken in Tuscany
        assert 43.0 < row["gps_lat"] < 44.0 and 11.0 < row["gps_lon"] < 12.0, row["rel_path"]
    assert all(rows[k]["state"] == "staged" for k in decodable if k.lower().endswith((".heic", ".heif")))

    for kind in ("landscape", "portrait"):
        upright = small(staged_image(data_dir, rows[f"jpg/orientation/{kind}_1.jpg"]["id"]))
        for n in range(2, 9):
            img = staged_image(data_dir, rows[f"jpg/orientation/{kind}_{n}.jpg"]["id"])
            diff = np.abs(small(img) - upright).mean()
            wrong = min(np.abs(small(img.transpose(t)) - upright).mean() for t in Image.Transpose)
            assert diff < wrong / 1.5, f"{kind}_{n} is not upright (diff {diff:.1f}, a wrong turn {wrong:.1f})"


# ---- network filesystems are polled --------------------------------------------------------------------


def test_root_on_cifs_is_polled_and_a_new_photo_arrives(tmp_path, data_dir):
    root = tmp_path / "nas"
    root.mkdir()
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        f"40 22 0:40 / {root} rw,relatime shared:20 - cifs //nas/photos rw,vers=3.0\n"
    )
    cfg = load(write_config(tmp_path, [root]))
    with DaemonThread(cfg, mounts_path=str(mountinfo)):
        wait_for(lambda: _root_mode(data_dir) == "poll", timeout=30, what="the root to be polled")
        make_photos(root / "new", 1)
        wait_for(settled(data_dir, 1), timeout=30, what="the new photo")
    assert counts(data_dir)["staged"] == 1


def _root_mode(data_dir: Path) -> str | None:
    with Catalog.in_data_dir(data_dir) as cat:
        roots = cat.active_roots()
        return roots[0].watch_mode if roots else None


# ---- unplugging a drive --------------------------------------------------------------------------------


def test_unplug_then_replug_loses_nothing_and_restages_nothing(tmp_path, data_dir):
    root = tmp_path / "usb"
    make_photos(root / "trip", 20)
    cfg = load(write_config(tmp_path, [root]))
    with DaemonThread(cfg):
        wait_for(settled(data_dir, 20), what="initial ingest")
        before = rows_by_path(data_dir)

        unplugged = tmp_path / "usb-unplugged"
        root.rename(unplugged)
        root.mkdir()  # an empty mount point left behind
        wait_for(lambda: counts(data_dir)["offline"] == 20, timeout=30, what="photos to go offline")
        assert counts(data_dir)["deleted"] == 0
        root.rmdir()  # the mount point itself goes away
        time.sleep(6)  # more than one presence check
        assert counts(data_dir)["deleted"] == 0 and counts(data_dir)["offline"] == 20

        unplugged.rename(root)
        wait_for(lambda: counts(data_dir)["staged"] == 20, timeout=30, what="photos to come back")
    after = rows_by_path(data_dir)
    assert {k: (v["id"], v["staged_at"]) for k, v in after.items()} == {
        k: (v["id"], v["staged_at"]) for k, v in before.items()
    }, "something was re-staged"


# ---- moving a folder -----------------------------------------------------------------------------------


@pytest.mark.parametrize("daemon_running", [True, False], ids=["watched", "between-runs"])
def test_moving_a_folder_keeps_ids_and_restages_nothing(tmp_path, data_dir, daemon_running):
    root = tmp_path / "photos"
    make_photos(root / "2019" / "三亚", 50)
    cfg = load(write_config(tmp_path, [root]))
    with DaemonThread(cfg):
        wait_for(settled(data_dir, 50), what="initial ingest")
        if daemon_running:
            (root / "2019" / "三亚").rename(root / "海边")
            wait_for(lambda: "海边/img_0000.jpg" in rows_by_path(data_dir), what="the move to be seen")
            wait_for(settled(data_dir, 50), what="the move to settle")
    before = rows_by_path(data_dir)
    if not daemon_running:
        (root / "2019" / "三亚").rename(root / "海边")
        subprocess.run(
            photod_cmd(tmp_path / "config.toml", "scan"),
            check=True,
            capture_output=True,
            env={**os.environ, "PHOTOD_DATA_DIR": str(data_dir)},
        )
    after = {k: v for k, v in rows_by_path(data_dir).items() if v["state"] != "deleted"}
    assert len(after) == 50
    assert {k.split("/")[-1]: (v["id"], v["staged_at"]) for k, v in after.items()} == {
        k.split("/")[-1]: (v["id"], v["staged_at"]) for k, v in before.items()
    }
    assert all(k.startswith("海边/") for k in after)


# ---- kill -9 during ingest -----------------------------------------------------------------------------


def test_kill_9_during_ingest_loses_and_duplicates_nothing(tmp_path, data_dir):
    seed = int(os.environ.get("PHOTOD_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill -9 trials, seed {seed}")
    root = tmp_path / "library"
    make_photos(root, 300, size=(640, 480))
    config = write_config(tmp_path, [root], ocr=True)  # text is read while staging: it must survive kills too
    log = tmp_path / "daemon.log"
    for trial in range(4):
        proc = start_daemon_process(config, data_dir, log)
        time.sleep(rng.uniform(0.5, 3.0) + trial * 0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        check_stage_agrees_with_catalog(data_dir)
    proc = start_daemon_up(config, data_dir, log)
    try:
        wait_for(settled(data_dir, 300), timeout=180, what="ingest to finish after the kills")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    check_stage_agrees_with_catalog(data_dir)
    rows = rows_by_path(data_dir)
    assert len(rows) == 300 and all(r["state"] == "staged" for r in rows.values())
    assert len({r["content_hash"] for r in rows.values()}) == 300
    with Catalog.in_data_dir(data_dir) as cat:  # every photo read once, in the transaction that staged it
        read = cat.query("SELECT photo_id, created_at FROM photo_text")
        staged = {r["id"]: r["staged_at"] for r in cat.query("SELECT id, staged_at FROM photos")}
    assert sorted(r["photo_id"] for r in read) == sorted(staged)
    assert all(abs(r["created_at"] - staged[r["photo_id"]]) < 5 for r in read)


def check_stage_agrees_with_catalog(data_dir: Path) -> None:
    """After a kill: no row claims a missing entry. Orphan entries may exist only for rows still `new`
    (the daemon overwrites or removes them at its next start)."""
    if not (data_dir / "stage").exists():  # killed before it created the stage: nothing may claim one
        with Catalog.in_data_dir(data_dir) as cat:
            assert cat.staged_ids() == set()
        return
    with Catalog.in_data_dir(data_dir) as cat, Stage(data_dir, readonly=True) as stage:
        keys = stage.keys()
        claimed = cat.staged_ids()
        assert claimed <= keys, f"rows claim missing stage entries: {sorted(claimed - keys)[:5]}"
        new_ids = {r["id"] for r in cat.query("SELECT id FROM photos WHERE state = 'new'")}
        assert keys - claimed <= new_ids
        for key in list(keys)[:20]:
            Image.open(io.BytesIO(stage.get_jpeg(key))).verify()


# ---- bad input and bad settings ------------------------------------------------------------------------


def test_bad_files_fail_alone_and_the_daemon_keeps_running(tmp_path, data_dir):
    root = tmp_path / "library"
    good = make_photos(root, 5)
    (root / "notes.jpg").write_text("this is a text file, not a photo")
    (root / "empty.jpg").write_bytes(b"")
    (root / "cut.jpg").write_bytes(good[0].read_bytes()[:400])
    missing_root = tmp_path / "not-plugged-in"
    cfg = load(write_config(tmp_path, [root, missing_root]))
    with DaemonThread(cfg) as d:
        wait_for(settled(data_dir, 8), what="ingest")
        make_photos(root / "later", 2, prefix="later")  # the daemon is still alive and ingesting
        wait_for(settled(data_dir, 10), what="photos added after the bad ones")
        assert d.thread.is_alive()
    rows = rows_by_path(data_dir)
    errors = {k: r["error"] for k, r in rows.items() if r["state"] == "failed"}
    assert set(errors) == {"notes.jpg", "empty.jpg", "cut.jpg"}
    assert "empty" in errors["empty.jpg"].lower() or "0 bytes" in errors["empty.jpg"]
    assert all("jpg" in e for e in errors.values()), errors
    assert counts(data_dir)["staged"] == 7
    with Catalog.in_data_dir(data_dir) as cat:
        offline = [r for r in cat.active_roots() if r.path == missing_root]
        assert offline and not offline[0].online


def test_invalid_config_is_refused_with_the_key_named(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("[workers]\ndecode = -3\n")
    result = subprocess.run(photod_cmd(cfg, "status"), capture_output=True, text=True)
    assert result.returncode == 2
    assert "workers.decode" in result.stderr and "-3" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_finishes_and_exits_zero(tmp_path, data_dir):
    root = tmp_path / "library"
    make_photos(root, 40, size=(800, 600))
    config = write_config(tmp_path, [root])
    log = tmp_path / "daemon.log"
    proc = start_daemon_process(config, data_dir, log)
    wait_for(
        lambda: (data_dir / "catalog.db").exists() and counts(data_dir)["staged"] > 0, timeout=60, what="some staging"
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
    check_stage_agrees_with_catalog(data_dir)
    assert "photod stopped" in log.read_text()


# ---- one daemon per data dir ---------------------------------------------------------------------------


def test_a_second_daemon_on_the_same_data_dir_is_refused_until_the_first_is_gone(tmp_path, data_dir):
    root = tmp_path / "library"
    make_photos(root, 3)
    config = write_config(tmp_path, [root])
    log = tmp_path / "daemon.log"
    first = start_daemon_up(config, data_dir, log)
    try:
        second = subprocess.run(
            photod_cmd(config, "run"),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PHOTOD_DATA_DIR": str(data_dir)},
        )
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert f"pid {first.pid}" in second.stderr and str(data_dir) in second.stderr
        assert "systemctl" in second.stderr
        heartbeat = (data_dir / "daemon.json").read_text()
        assert f'"pid": {first.pid}' in heartbeat, "the refused daemon wrote the status file"
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    # The kernel dropped the lock with the killed process: no stale lock keeps the next one out.
    third = start_daemon_up(config, data_dir, log)
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=60) == 0, log.read_text()[-2000:]


# ---- the daemon's parts: built in order, stopped in reverse ----------------------------------------------


@pytest.fixture
def stops(monkeypatch):
    """The names of the daemon's parts, in the order they are stopped (each part's first stop only)."""
    from photod.ingest.ingester import Ingester
    from photod.roots.watcher import Watcher
    from photod.service.heartbeat import Heartbeat
    from photod.service.models import ModelWorker
    from photod.service.systemd import Notifier

    order: list[str] = []
    parts = {
        "stopping": (Notifier, "stopping"),
        "heartbeat": (Heartbeat, "close"),
        "watcher": (Watcher, "stop"),
        "models": (ModelWorker, "close"),
        "ingester": (Ingester, "close"),
        "stage": (Stage, "close"),
        "catalog": (Catalog, "close"),
    }
    for name, (cls, method) in parts.items():
        original = getattr(cls, method)

        def recorded(self, *args, _name=name, _original=original, **kwargs):
            if _name not in order:
                order.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, recorded)
    return order


def stopped_daemon(tmp_path, data_dir):
    """A daemon asked to stop before it starts: it builds its parts, starts, and stops at once."""
    import threading

    from photod.service.daemon import Daemon

    root = tmp_path / "library"
    make_photos(root, 1)
    stop = threading.Event()
    stop.set()
    return Daemon(load(write_config(tmp_path, [root])), stop_event=stop)


def test_the_parts_stop_in_reverse_after_systemd_and_the_status_file_are_told(tmp_path, data_dir, stops, caplog):
    caplog.set_level("INFO", logger="photod")
    assert stopped_daemon(tmp_path, data_dir).run() == 0
    assert stops == ["stopping", "heartbeat", "watcher", "models", "ingester", "stage", "catalog"]
    assert not (data_dir / "daemon.json").exists()
    assert caplog.messages[-1] == "photod stopped"


def test_a_part_that_fails_to_build_stops_the_parts_built_before_it(tmp_path, data_dir, stops, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the model worker cannot be built")

    monkeypatch.setattr("photod.service.daemon.ModelWorker", broken)
    daemon = stopped_daemon(tmp_path, data_dir)
    with pytest.raises(RuntimeError, match="cannot be built"):
        daemon.run()
    # Never started, so systemd is not told it stops; the status file says no daemon runs.
    assert stops == ["ingester", "stage", "catalog", "heartbeat"]
    assert not (data_dir / "daemon.json").exists()
    with pytest.raises(Exception, match="closed"):
        daemon.catalog.conn.execute("SELECT 1")
