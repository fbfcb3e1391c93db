"""Ingest on real files, a real catalog and a real stage: orientation, HEIC, colour modes, EXIF, broken
input, vanished and unreadable files, moves, and kill -9 in the middle of a batch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import photod.config
from photod.config import IndexConfig, WorkersConfig
from photod.ingest.ingester import Ingester, IngestReport, check_stage_consistency
from photod.store.catalog import Catalog
from photod.store.stage import Stage
from tests.support.faultkit import png_claiming

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def stage(data_dir):
    s = Stage(data_dir)
    yield s
    s.close()


def _register(catalog: Catalog, folder: Path) -> dict[str, int]:
    """Make `folder` an online root and catalog every file in it, as the scanner would."""
    root = catalog.add_root(photod.config.make_root(folder))
    catalog.set_root_online(root.id)
    ids = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        st = path.stat()
        ids[rel], _ = catalog.upsert_file(root.id, rel, st.st_size, st.st_mtime_ns)
    return ids


def _copy(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / (name or src.name)
    shutil.copy2(src, dst)
    return dst


def _staged(stage: Stage, photo_id: int) -> Image.Image:
    img = Image.open(BytesIO(stage.get_jpeg(photo_id)))
    img.load()
    return img


def _small(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float32)


def _diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(_small(a) - _small(b)).mean())


# ---- what good photos become ---------------------------------------------------------------------------


def test_every_orientation_is_staged_upright(catalog, stage, samples, tmp_path):
    folder = tmp_path / "root"
    for src in sorted((samples / "jpg" / "orientation").glob("*.jpg")):
        _copy(src, folder)
    ids = _register(catalog, folder)
    report = Ingester(catalog, stage).drain()
    assert report == IngestReport(staged=16)
    wrong_ways = [t for t in Image.Transpose]
    for shape in ("landscape", "portrait"):
        twin = _staged(stage, ids[f"{shape}_1.jpg"])
        for n in range(2, 9):
            img = _staged(stage, ids[f"{shape}_{n}.jpg"])
            assert img.mode == "RGB" and img.size == twin.size, (shape, n)
            right = _diff(img, twin)  # same scene; only the painted digit differs
            wrong = min(_diff(img.transpose(t), twin) for t in wrong_ways)
            assert right < 20, (shape, n, right)
            assert wrong > right + 10, (shape, n, right, wrong)
            row = catalog.photo(ids[f"{shape}_{n}.jpg"])
            assert row["orientation"] == n and row["state"] == "staged"
            assert (row["width"], row["height"]) == ((600, 450) if shape == "landscape" else (450, 600))


def test_heic_and_heif_are_staged(catalog, stage, samples, tmp_path):
    folder = tmp_path / "root"
    heics = sorted(p for p in (samples / "heic").rglob("*") if p.suffix.lower() in (".heic", ".heif"))
    assert len(heics) >= 3
    for src in heics:
        _copy(src, folder)
    ids = _register(catalog, folder)
    report = Ingester(catalog, stage, workers=2).drain()
    assert report.staged == len(heics) and report.failed == 0
    for src in heics:
        row = catalog.photo(ids[src.name])
        assert row["state"] == "staged" and row["format"] == "HEIF"
        with Image.open(src) as original:
            assert (row["width"], row["height"]) == original.size
        img = _staged(stage, ids[src.name])
        assert img.mode == "RGB"
        assert min(img.size) == min(384, *original.size)
    iphone = catalog.photo(ids["iphone_13_pro_max.HEIC"])
    assert iphone["camera_make"] == "Apple" and iphone["taken_at"] == "2022-02-16T12:55:41"


def test_generated_modes_all_stage_as_rgb(catalog, stage, tmp_path):
    folder = tmp_path / "root"
    folder.mkdir()
    Image.new("CMYK", (200, 100), (0, 200, 200, 0)).save(folder / "cmyk.jpg", quality=90)
    ramp = np.tile(np.linspace(0, 65535, 200), (100, 1)).astype(np.uint16)  # dark left, bright right
    Image.fromarray(ramp).save(folder / "deep.png")
    Image.effect_mandelbrot((200, 100), (-2, -1, 1, 1), 40).convert("P").save(folder / "palette.png")
    Image.new("RGBA", (200, 100), (0, 0, 255, 90)).save(folder / "alpha.png")
    frames = [Image.new("RGB", (200, 100), c) for c in ("red", "lime", "blue")]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    ids = _register(catalog, folder)
    assert Image.open(folder / "deep.png").mode in ("I;16", "I")
    assert Ingester(catalog, stage).drain() == IngestReport(staged=5)
    for rel, pid in ids.items():
        img = _staged(stage, pid)
        assert img.mode == "RGB" and img.size == (200, 100), rel
    r, g, b = _staged(stage, ids["anim.gif"]).getpixel((100, 50))
    assert r > 230 and g < 30 and b < 30  # the first frame
    assert np.asarray(_staged(stage, ids["deep.png"]))[:, -5:].mean() > 240  # the bright end is bright


def test_exif_lands_in_the_catalog(catalog, stage, samples, tmp_path):
    folder = tmp_path / "root"
    _copy(samples / "jpg" / "Canon_40D.jpg", folder)
    gps_files = sorted((samples / "jpg" / "gps").glob("*.jpg"))
    for src in gps_files:
        _copy(src, folder / "gps")
    ids = _register(catalog, folder)
    Ingester(catalog, stage).drain()
    canon = catalog.photo(ids["Canon_40D.jpg"])
    assert (canon["taken_at"], canon["camera_make"], canon["camera_model"]) == (
        "2008-05-30T15:56:01",
        "Canon",
        "Canon EOS 40D",
    )
    assert canon["gps_lat"] is None
    for src in gps_files:
        gps = Image.open(src)._getexif()[34853]  # Pillow's raw GPS tags, converted here by hand
        lat = sum(float(v) / 60**i for i, v in enumerate(gps[2])) * (-1 if gps[1] == "S" else 1)
        lon = sum(float(v) / 60**i for i, v in enumerate(gps[4])) * (-1 if gps[3] == "W" else 1)
        row = catalog.photo(ids[f"gps/{src.name}"])
        assert row["gps_lat"] == pytest.approx(lat, abs=1e-6)
        assert row["gps_lon"] == pytest.approx(lon, abs=1e-6)
    # the stage size holds whatever the photo's size, and photod never wrote inside the root
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == sorted(
        ["Canon_40D.jpg"] + [p.name for p in gps_files]
    )


# ---- broken input --------------------------------------------------------------------------------------


def _pillow_can_decode(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.load()
        return True
    except Exception:
        return False


def test_broken_files_fail_with_reasons_and_nothing_else_is_affected(catalog, stage, samples, tmp_path):
    folder = tmp_path / "root"
    good = [
        samples / "jpg" / "Canon_40D.jpg",
        samples / "jpg" / "orientation" / "landscape_6.jpg",
        samples / "tiff" / "Crémieux11.tiff",
    ]
    odd = [samples / "jpg" / "corrupted.jpg", *sorted((samples / "jpg" / "invalid").glob("*.jpg"))]
    for src in good + odd:
        _copy(src, folder)
    (folder / "notes.jpg").write_text("not a photo, a shopping list\n" * 10)
    (folder / "empty.jpg").write_bytes(b"")
    whole = (samples / "jpg" / "Canon_PowerShot_S40.jpg").read_bytes()
    (folder / "half.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    ids = _register(catalog, folder)

    report = Ingester(catalog, stage, workers=2).drain(limit=5)  # several batches: failures mid-stream

    expected_failures = {
        "notes.jpg": "not an image Pillow can read",
        "empty.jpg": "empty file (0 bytes)",
        "half.jpg": "truncated image data",
        "bomb.png": "exceeds the decompression-bomb limit",
    }
    for rel, reason in expected_failures.items():
        row = catalog.photo(ids[rel])
        assert row["state"] == "failed", rel
        assert row["error"].startswith(f"{rel}: ") and reason in row["error"], row["error"]
        assert ids[rel] not in stage
    decodable = [src.name for src in odd if _pillow_can_decode(src)] + [src.name for src in good]
    for rel in decodable:
        assert catalog.photo(ids[rel])["state"] == "staged", rel
        assert _staged(stage, ids[rel]).mode == "RGB"
    undecodable = [src.name for src in odd if not _pillow_can_decode(src)]
    for rel in undecodable:
        assert catalog.photo(ids[rel])["state"] == "failed", rel
    assert report.staged == len(decodable)
    assert report.failed == len(expected_failures) + len(undecodable)
    assert {r["rel_path"] for r in catalog.failed()} == set(expected_failures) | set(undecodable)
    assert stage.keys() == catalog.staged_ids()


def test_failure_logs_one_warning_naming_file_and_reason(catalog, stage, tmp_path, caplog):
    folder = tmp_path / "root"
    folder.mkdir()
    (folder / "IMG_1.jpg").write_text("hello")
    _register(catalog, folder)
    with caplog.at_level("INFO", logger="photod.ingest.ingester"):
        Ingester(catalog, stage).drain()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "IMG_1.jpg" in warnings[0] and "not an image" in warnings[0] and str(folder) in warnings[0]


def test_vanished_file_is_left_for_the_scanner(catalog, stage, samples, tmp_path):
    folder = tmp_path / "root"
    _copy(samples / "jpg" / "Canon_40D.jpg", folder, "gone.jpg")
    _copy(samples / "jpg" / "Canon_40D.jpg", folder, "kept.jpg")
    ids = _register(catalog, folder)
    (folder / "gone.jpg").unlink()
    ingester = Ingester(catalog, stage)
    report = ingester.drain()
    assert report == IngestReport(staged=1, skipped=1)
    row = catalog.photo(ids["gone.jpg"])
    assert row["state"] == "new" and row["error"] is None
    assert ingester.ingest_batch() == IngestReport()  # not retried at once: no busy loop on it


def test_unreadable_file_fails_with_a_hint(catalog, stage, samples, tmp_path):
    folder = tmp_path / "root"
    _copy(samples / "jpg" / "Canon_40D.jpg", folder, "ok.jpg")
    _copy(samples / "jpg" / "Canon_40D.jpg", folder, "secret.jpg").chmod(0)
    if os.geteuid() != 0:
        ids = _register(catalog, folder)
        Ingester(catalog, stage).drain()
        rows = {name: catalog.photo(pid) for name, pid in ids.items()}
    else:
        # root reads any file: run the ingest in a child without the capabilities that allow that
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv is not available to drop CAP_DAC_OVERRIDE")
        catalog.close()
        stage.close()
        done = subprocess.run(
            [
                "setpriv",
                "--bounding-set=-dac_override,-dac_read_search",
                "--inh-caps=-all",
                sys.executable,
                "-c",
                _CHILD_INGEST,
                str(folder),
                str(tmp_path / "data"),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "permission denied" in done.stderr  # the one warning line
        rows = json.loads(done.stdout)
    assert rows["ok.jpg"]["state"] == "staged"
    assert rows["secret.jpg"]["state"] == "failed"
    assert rows["secret.jpg"]["error"] == "secret.jpg: permission denied: run photod as a user who can read it"


_CHILD_INGEST = textwrap.dedent("""
    import json, logging, os, sys
    from pathlib import Path
    import photod.config
    from photod.store.catalog import Catalog
    from photod.ingest.ingester import Ingester
    from photod.store.stage import Stage
    logging.basicConfig(level=logging.WARNING)
    folder, data = Path(sys.argv[1]), Path(sys.argv[2])
    catalog = Catalog.in_data_dir(data)
    root = catalog.add_root(photod.config.make_root(folder))
    catalog.set_root_online(root.id)
    ids = {}
    for p in sorted(folder.iterdir()):
        st = p.stat()
        ids[p.name], _ = catalog.upsert_file(root.id, p.name, st.st_size, st.st_mtime_ns)
    with Stage(data) as stage:
        Ingester(catalog, stage).drain()
    print(json.dumps({name: catalog.photo(pid) for name, pid in ids.items()}))
""")


# ---- moves -------------------------------------------------------------------------------------------


class CountingStage(Stage):
    """The real stage, counting the writes ingest asks of it."""

    puts = 0

    def put_many(self, items):
        if items:
            self.puts += 1
        super().put_many(items)


def test_moved_file_keeps_id_captions_and_stage_entry(catalog, data_dir, samples, tmp_path):
    folder = tmp_path / "root"
    _copy(samples / "jpg" / "gps" / "DSCN0010.jpg", folder / "2019 三亚")
    with CountingStage(data_dir) as stage:
        ids = _register(catalog, folder)
        old_id = ids["2019 三亚/DSCN0010.jpg"]
        ingester = Ingester(catalog, stage)
        assert ingester.drain().staged == 1 and stage.puts == 1
        catalog.add_caption(old_id, "海边的日落")
        jpeg_before = stage.get_jpeg(old_id)
        txn_before = stage.env.info()["last_txnid"]

        (folder / "wedding").mkdir()
        os.rename(folder / "2019 三亚" / "DSCN0010.jpg", folder / "wedding" / "sunset.jpg")
        catalog.mark_deleted([old_id])  # what the scanner does for the old path
        st = (folder / "wedding" / "sunset.jpg").stat()
        new_id, _ = catalog.upsert_file(
            catalog.photo(old_id)["root_id"], "wedding/sunset.jpg", st.st_size, st.st_mtime_ns
        )
        assert new_id != old_id

        assert ingester.drain() == IngestReport(adopted=1)
        assert stage.puts == 1  # not staged again
        assert stage.env.info()["last_txnid"] == txn_before  # no write transaction at all
        assert stage.get_jpeg(old_id) == jpeg_before and new_id not in stage
    row = catalog.photo(old_id)
    assert row["rel_path"] == "wedding/sunset.jpg" and row["state"] == "staged"
    assert catalog.photo(new_id) is None
    assert [c["text"] for c in catalog.captions(old_id)] == ["海边的日落"]


def test_vectors_copied_at_ingest_reach_the_index_without_being_announced(catalog, stage, data_dir, samples, tmp_path):
    """A backup of photos already encoded gets their vectors from ingest, not from the indexer. The indexer's
    next run takes them into the index before its checkpoint passes them, though nobody told it."""
    from photod.index.indexer import Indexer
    from photod.index.vectorindex import VectorIndex
    from photod.store import vectors
    from tests.support.onnxkit import make_bundle

    bundle = make_bundle(tmp_path / "tiny")
    originals = sorted((samples / "jpg" / "orientation").glob("landscape_*.jpg"))[:3]
    for src in originals:
        _copy(src, tmp_path / "drive")
    _register(catalog, tmp_path / "drive")
    ingester = Ingester(catalog, stage)
    assert ingester.drain().staged == 3
    index = VectorIndex.open(data_dir, bundle.image_id, catalog, IndexConfig(kind="exact"))
    indexer = Indexer(catalog, stage, bundle, index, WorkersConfig(encode_threads=1))
    assert indexer.run_once() == 3

    for src in originals:
        _copy(src, tmp_path / "backup")
    _copy(samples / "jpg" / "Canon_40D.jpg", tmp_path / "backup")  # a new photo, for the indexer to encode
    backup = _register(catalog, tmp_path / "backup")
    assert ingester.drain() == IngestReport(staged=1, reused=3)
    assert indexer.run_once() == 1  # encodes the new photo only: its checkpoint now passes the copies' rows
    held = set(index.ids().tolist())
    assert {backup[src.name] for src in originals} <= held
    assert held == set(vectors.indexed_ids(catalog, bundle.image_id).tolist())


# ---- kill -9 -----------------------------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import sys
    from photod.store.catalog import Catalog
    from photod.ingest.ingester import Ingester
    from photod.store.stage import Stage
    catalog = Catalog.in_data_dir(sys.argv[1])
    stage = Stage(sys.argv[1])
    print("ready", flush=True)
    Ingester(catalog, stage, workers=2).drain(limit=4)
    print("done", flush=True)
""")


def _run_child(data_dir: Path, kill_after: float | None) -> bool:
    """Run an ingest in a child process; SIGKILL it `kill_after` seconds in. True if it finished."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(data_dir)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert child.stdout.readline().strip() == "ready"
    if kill_after is not None:
        time.sleep(kill_after)
        child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=120)
    return "done" in out


def test_kill_9_during_ingest_never_leaves_a_row_claiming_a_missing_entry(catalog, samples, tmp_path, data_dir):
    folder = tmp_path / "root"
    small = sorted(p for p in (samples / "jpg").glob("*.jpg") if p.stat().st_size < 20_000)
    photos = [*small, *sorted((samples / "jpg" / "orientation").glob("*.jpg"))]
    for copy in range(2):
        for src in photos:
            _copy(src, folder / f"set{copy}")
    ids = _register(catalog, folder)
    assert len(ids) >= 60
    Stage(data_dir).close()  # create it, so a reader can open it at any point

    finished = False
    for kill_after in (0.05, 0.15, 0.3, 0.5, 0.8):
        finished = _run_child(data_dir, kill_after)
        with Stage(data_dir, readonly=True) as stage:
            in_stage = stage.keys()
        claimed = catalog.staged_ids()
        assert claimed <= in_stage  # the invariant that makes kill -9 safe
        assert len(in_stage - claimed) <= 4  # at most one batch written but not yet marked
        if finished:
            break
    if not finished:
        assert _run_child(data_dir, None)
    with Stage(data_dir) as stage:
        removed, unstaged = check_stage_consistency(catalog, stage)
        assert unstaged == 0
        assert removed <= 4
        assert stage.keys() == set(ids.values()) == catalog.staged_ids()
        assert len(stage) == len(ids)  # each photo exactly once
    assert catalog.counts()["staged"] == len(ids) and catalog.counts()["new"] == 0


def test_a_hung_share_does_not_stall_other_roots(catalog, stage, tmp_path, monkeypatch):
    """A read that never returns (a sleeping NAS, a hung NFS mount) is abandoned after its deadline; the
    other root's photos are staged meanwhile, and the hung root's are staged once it answers again.
    No hung share can exist on this machine, so the read itself is made to block."""
    import threading

    from photod.ingest import ingester as ingest_mod

    nas, usb = tmp_path / "nas", tmp_path / "usb"
    for shade, folder in enumerate((nas, usb)):
        folder.mkdir()
        for i in range(3):
            Image.new("RGB", (40, 30), (i * 60, 90, 100 * shade)).save(folder / f"{folder.name}{i}.jpg")
    for folder in (nas, usb):
        r = catalog.add_root(photod.config.make_root(folder))
        catalog.set_root_online(r.id)
        for p in sorted(folder.iterdir()):
            st = p.stat()
            catalog.upsert_file(r.id, p.name, st.st_size, st.st_mtime_ns)
    wake = threading.Event()
    real_read = ingest_mod._read_regular

    def read(path, name, **sizes):
        if path.parent == nas:
            wake.wait()  # the share does not answer
        return real_read(path, name, **sizes)

    monkeypatch.setattr(ingest_mod, "_read_regular", read)
    ingester = Ingester(catalog, stage, workers=2, read_deadline=0.3)
    t0 = time.monotonic()
    report = ingester.ingest_batch(64)
    assert time.monotonic() - t0 < 5
    states = {r["filename"]: r["state"] for r in catalog.query("SELECT filename, state FROM photos")}
    assert [states[f"usb{i}.jpg"] for i in range(3)] == ["staged"] * 3
    assert [states[f"nas{i}.jpg"] for i in range(3)] == ["new"] * 3
    assert report.staged == 3 and report.skipped == 3
    assert ingester.ingest_batch(64).done == 0  # the hung root is left alone for a while
    wake.set()
    ingester._hung.clear()
    ingester._deferred.clear()
    assert ingester.ingest_batch(64).staged == 3
