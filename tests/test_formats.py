"""Every format a person keeps: content sniffed, AVIF and JPEG XL, RAW (preview or demosaic, orientation),
RAW+JPEG pairs, Live Photos and edited copies, sidecars, videos (moments, metadata, bad input, the deadline),
one result per video, and the real samples in ../shared/photos."""

from __future__ import annotations

import shutil
import threading
import types
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import photod.config
from photod.config import Config, VideoConfig, WorkersConfig
from photod.index.indexer import Indexer
from photod.index.vectorindex import VectorIndex
from photod.ingest import ingester as ingest_mod
from photod.ingest import raw as raw_mod
from photod.ingest.decode import decode_photo
from photod.ingest.ingester import Ingester
from photod.ingest.raw import decode_raw
from photod.ingest.sniff import sniff
from photod.ingest.video import decode_video
from photod.roots.scanner import reconcile
from photod.search.finder import Query, find_once
from photod.search.results import video_label
from photod.store import wordsearch
from photod.store.catalog import Catalog
from photod.store.stage import Stage
from photod.tui.screens.detail import describe
from tests.support import mediakit
from tests.support.onnxkit import install_active

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "photos"
PRISM = SHARED / "photoprism-samples"
needs_samples = pytest.mark.skipif(not PRISM.is_dir(), reason=f"samples not found at {PRISM}")
SIDECARS = {".xmp", ".aae"}


@pytest.fixture
def stage(data_dir):
    s = Stage(data_dir)
    yield s
    s.close()


def scan_and_stage(
    catalog: Catalog,
    stage: Stage,
    folder: Path,
    video: VideoConfig = VideoConfig(),
    ingester: dict | None = None,
    **root_kw,
) -> dict[str, dict]:
    """Scan `folder` as a root and stage everything in it (with an Ingester given `ingester` as keywords);
    the rows by rel_path."""
    root = catalog.add_root(photod.config.make_root(folder, **root_kw))
    catalog.set_root_online(root.id)
    reconcile(catalog, catalog.root(root.id), present=lambda: True)
    Ingester(catalog, stage, video=video, **(ingester or {})).drain()
    return rows(catalog)


def rows(catalog: Catalog) -> dict[str, dict]:
    return {r["rel_path"]: r for r in catalog.query("SELECT * FROM photos WHERE kind != 'frame'")}


def staged_image(stage: Stage, pid: int) -> Image.Image:
    img = Image.open(BytesIO(stage.get_jpeg(pid)))
    img.load()
    return img


def mean_color(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), np.float32).reshape(-1, 3).mean(0)


# ---- content, not extension ------------------------------------------------------------------------


@needs_samples
def test_content_is_sniffed_not_trusted_from_the_extension(tmp_path):
    head = lambda p: p.read_bytes()[:4096]  # noqa: E731
    assert sniff(head(PRISM / "this-is-a-jpeg.png"), "this-is-a-jpeg.png") == "image"
    data = (PRISM / "this-is-a-jpeg.png").read_bytes()
    assert decode_photo(data, "this-is-a-jpeg.png").meta.format == "JPEG"
    for name in ("iphone_7.heic", "fox.profile0.8bpc.yuv420.avif", "example.tif"):
        assert sniff(head(PRISM / name), name) == "image", name
    for name in ("earth.mov", "example.mp4", "quicktime-hvc1.mov", "mp42-hvc1.mp4"):
        assert sniff(head(PRISM / name), name) == "video", name
    assert sniff(head(PRISM / "canon_eos_6d.dng"), "canon_eos_6d.dng") == "raw"
    # A DNG is a TIFF: named .tif it is read as the TIFF it also is, by Pillow, not LibRaw.
    assert sniff(head(PRISM / "canon_eos_6d.dng"), "shot.tif") == "image"
    # A video named .jpg is still a video; Matroska is recognised by its EBML header.
    assert sniff(head(PRISM / "earth.mov"), "holiday.jpg") == "video"
    mkv = mediakit.write_video(tmp_path / "clip.mkv", [((200, 30, 30), 1.0)])
    assert sniff(head(mkv), "clip.bin") == "video"


@pytest.mark.parametrize("fmt", ["AVIF", "JXL"])
def test_avif_and_jpeg_xl_are_staged_through_pillow(fmt):
    if fmt == "JXL":
        pytest.importorskip("pillow_jxl", reason="JPEG XL is the jxl extra")
    buf = BytesIO()
    Image.new("RGB", (640, 480), (20, 120, 220)).save(buf, fmt, quality=80)
    decoded = decode_photo(buf.getvalue(), f"photo.{fmt.lower()}", size=240)
    assert decoded.meta.format == fmt and (decoded.meta.width, decoded.meta.height) == (640, 480)
    staged = Image.open(BytesIO(decoded.jpeg))
    assert staged.size == (320, 240)
    assert np.abs(mean_color(staged) - (20, 120, 220)).max() < 8


# ---- RAW -------------------------------------------------------------------------------------------


@needs_samples
def test_raw_is_staged_from_its_preview_when_big_enough_else_from_a_half_size_demosaic():
    data = (PRISM / "canon_eos_6d.dng").read_bytes()
    calls = []
    real = raw_mod._demosaic
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(raw_mod, "_demosaic", lambda raw: calls.append(1) or real(raw))
        quick = decode_raw(data, "canon_eos_6d.dng", size=384, quality=90)
        assert not calls  # the 1024x683 preview was enough
        full = decode_raw(data, "canon_eos_6d.dng", size=700, quality=90)
        assert calls == [1]  # the preview is smaller than 700: LibRaw demosaiced at half size
    for d in (quick, full):
        assert (d.meta.width, d.meta.height, d.meta.format) == (1224, 816, "RAW DNG")
        assert d.meta.camera_make == "Canon" and d.meta.taken_at == "2019-06-06T07:29:51"
    a, b = Image.open(BytesIO(quick.jpeg)), Image.open(BytesIO(full.jpeg))
    assert a.size == (576, 384) and b.size == (1050, 700)  # this DNG is linear: LibRaw renders all 1224x816
    # The same picture either way: same framing, colours close (LibRaw's rendering vs the camera's).
    diff = np.abs(np.asarray(a.resize((64, 43)), np.float32) - np.asarray(b.resize((64, 43)), np.float32))
    assert diff.mean() < 40


def test_raw_preview_is_turned_by_the_camera_orientation_unless_it_has_its_own():
    # LibRaw's handle is a stand-in here: the one RAW sample was shot in landscape (flip 0).
    landscape = Image.new("RGB", (600, 400), (250, 0, 0))
    landscape.paste((0, 0, 250), (0, 0, 300, 400))  # left half blue
    buf = BytesIO()
    landscape.save(buf, "JPEG")
    thumb = types.SimpleNamespace(format=raw_mod_thumb_jpeg(), data=buf.getvalue())
    fake = types.SimpleNamespace(extract_thumb=lambda: thumb)
    turned = raw_mod._preview(fake, "x.nef", 384, orientation=6)  # camera held clockwise
    assert turned.size == (400, 600)
    top = mean_color(turned.crop((0, 0, 400, 100)))
    assert top[2] > 200 and top[0] < 60  # the blue half is now on top, as the photographer saw it
    assert raw_mod._preview(fake, "x.nef", 384, orientation=1).size == (600, 400)
    assert raw_mod._preview(fake, "x.nef", 500, orientation=1) is None  # smaller than the stage size


def raw_mod_thumb_jpeg():
    import rawpy

    return rawpy.ThumbFormat.JPEG


def test_sidecars_are_never_photos_whatever_the_globs(tmp_path):
    from photod.roots.matcher import Matcher

    everything = Matcher([], [])
    assert everything.file_ok("IMG_1.JPG") and everything.file_ok("notes.txt")
    assert not everything.file_ok("IMG_1.xmp") and not everything.file_ok("IMG_4120.AAE")
    assert Matcher(["*"], []).dir_ok("edits.xmp")  # a folder of that name is still walked


@needs_samples
def test_raw_and_jpeg_pairs_live_photos_and_edits_are_linked(catalog, stage, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(PRISM / "canon_eos_6d.dng", lib / "IMG_0001.DNG")
    Image.open(PRISM / "beach_sand.jpg").save(lib / "IMG_0001.JPG")  # the camera's JPEG of the same shot
    shutil.copy(PRISM / "iphone_7.heic", lib / "IMG_0002.HEIC")
    shutil.copy(PRISM / "quicktime-hvc1.mov", lib / "IMG_0002.MOV")  # the Live Photo's motion
    for name in ("IMG_4120.JPG", "IMG_E4120.JPG", "IMG_4120.AAE"):
        shutil.copy(PRISM / name, lib / name)
    found = scan_and_stage(catalog, stage, lib)
    assert "IMG_4120.AAE" not in found  # a sidecar: never a photo, never a failed row
    assert {k: v["state"] for k, v in found.items()} == dict.fromkeys(
        ["IMG_0001.DNG", "IMG_0001.JPG", "IMG_0002.HEIC", "IMG_0002.MOV", "IMG_4120.JPG", "IMG_E4120.JPG"], "staged"
    )
    ids = {k: v["id"] for k, v in found.items()}
    links = {(link["shown_rel_path"], link["other_rel_path"], link["kind"]) for link in catalog.links_of(ids.values())}
    assert links == {
        ("IMG_0001.JPG", "IMG_0001.DNG", "raw"),
        ("IMG_0002.HEIC", "IMG_0002.MOV", "motion"),
        ("IMG_4120.JPG", "IMG_E4120.JPG", "edited"),
    }
    shown = lambda: sorted(r["rel_path"] for r in wordsearch.search_name(catalog, limit=None))  # noqa: E731
    # One photo per shot: the JPEG (not the RAW), the Live Photo's still; the original and its edit both.
    assert shown() == ["IMG_0001.JPG", "IMG_0002.HEIC", "IMG_4120.JPG", "IMG_E4120.JPG"]
    c = catalog.counts()
    assert (c["photos"], c["videos"]) == (5, 1)
    # The detail view lists both files of each.
    facts = lambda rel: dict(describe({**catalog.photo(ids[rel]), "links": catalog.links_of([ids[rel]])}))  # noqa: E731
    assert facts("IMG_0001.JPG")["RAW"] == "IMG_0001.DNG" and facts("IMG_0001.DNG")["JPEG"] == "IMG_0001.JPG"
    assert facts("IMG_0002.HEIC")["Motion"] == "IMG_0002.MOV" and facts("IMG_0002.MOV")["Video"].startswith("00:01")
    assert facts("IMG_4120.JPG")["Edited"] == "IMG_E4120.JPG" and facts("IMG_E4120.JPG")["Original"] == "IMG_4120.JPG"
    # Removing either file of the pair keeps the photo; removing both deletes it.
    (lib / "IMG_0001.JPG").unlink()
    reconcile(catalog, catalog.root(found["IMG_0001.DNG"]["root_id"]), present=lambda: True)
    assert "IMG_0001.DNG" in shown() and "IMG_0001.JPG" not in shown()
    (lib / "IMG_0001.DNG").unlink()
    reconcile(catalog, catalog.root(found["IMG_0001.DNG"]["root_id"]), present=lambda: True)
    assert not any(p.startswith("IMG_0001") for p in shown())
    (lib / "IMG_0002.HEIC").unlink()  # the still gone: the motion is a video of its own again
    reconcile(catalog, catalog.root(found["IMG_0002.MOV"]["root_id"]), present=lambda: True)
    assert "IMG_0002.MOV" in shown()


# ---- video -----------------------------------------------------------------------------------------

RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 40)


def test_video_moments_are_where_the_picture_changes(tmp_path):
    clip = mediakit.write_video(tmp_path / "scenes.mp4", [(RED, 3.0), (BLUE, 3.0), (GREEN, 3.0)])
    v = decode_video(str(clip), "scenes.mp4", VideoConfig(probe_seconds=0.5))
    assert [m.time for m in v.moments] == [0.0, 3.0, 6.0]
    colors = [mean_color(Image.open(BytesIO(m.staged.jpeg))) for m in v.moments]
    for got, want in zip(colors, (RED, BLUE, GREEN)):
        assert np.abs(got - want).max() < 30
    assert v.meta.kind == "video" and v.meta.duration == pytest.approx(9.0, abs=0.2)
    assert (v.meta.width, v.meta.height) == (160, 120) and v.meta.format == "video MPEG4"
    # At most max_frames: the first, then those that changed most.
    two = decode_video(str(clip), "scenes.mp4", VideoConfig(probe_seconds=0.5, max_frames=2))
    assert len(two.moments) == 2 and two.moments[0].time == 0.0
    # A still clip is one moment.
    still = mediakit.write_video(tmp_path / "still.mp4", [(RED, 4.0)])
    assert [m.time for m in decode_video(str(still), "still.mp4").moments] == [0.0]


def test_an_hour_long_video_is_looked_at_a_bounded_number_of_times(tmp_path):
    scenes = [((i * 67) % 256, (i * 131) % 256, (i * 29) % 256) for i in range(60)]
    clip = mediakit.write_video(tmp_path / "hour.mp4", [(c, 60.0) for c in scenes], fps=1, size=(64, 48), gop=30)
    v = decode_video(str(clip), "hour.mp4", VideoConfig(max_probes=120, max_frames=12))
    assert v.meta.duration == pytest.approx(3600, abs=2)
    assert v.looked <= 120 and len(v.moments) == 12 and not v.cut_short


def test_bad_videos_fail_alone_with_a_reason_and_the_rest_is_staged(catalog, stage, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "empty.mp4").write_bytes(b"")
    mediakit.write_audio_only(lib / "voice_memo.m4v")
    if PRISM.is_dir():
        whole = (PRISM / "earth.mov").read_bytes()
        (lib / "truncated.mov").write_bytes(whole[: len(whole) // 3])
        hevc = bytearray((PRISM / "quicktime-hvc1.mov").read_bytes())
        rng = np.random.default_rng(3)
        for i in rng.integers(len(hevc) // 4, len(hevc), 400):
            hevc[i] ^= 0xFF
        (lib / "corrupt_hevc.mov").write_bytes(bytes(hevc))
    mediakit.write_video(lib / "eight_k.mp4", [(BLUE, 0.2)], fps=5, size=(7680, 4320), codec="libx264")
    mediakit.write_video(lib / "fine.mp4", [(RED, 1.0)])
    found = scan_and_stage(catalog, stage, lib)
    assert found["empty.mp4"]["state"] == "failed" and "empty file" in found["empty.mp4"]["error"]
    assert found["voice_memo.m4v"]["state"] == "failed" and "no video stream" in found["voice_memo.m4v"]["error"]
    assert found["voice_memo.m4v"]["kind"] == "video"
    for name, row in found.items():
        assert row["state"] in ("staged", "failed"), name
        if row["state"] == "failed":
            assert name in row["error"], row["error"]
    big = found["eight_k.mp4"]
    assert big["state"] == "staged" and (big["width"], big["height"]) == (7680, 4320)
    assert min(staged_image(stage, big["id"]).size) == 384  # scaled by FFmpeg, never held at 8K
    assert found["fine.mp4"]["state"] == "staged"


def test_a_video_decode_that_hangs_is_abandoned_and_others_go_on(catalog, stage, tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    mediakit.write_video(lib / "hangs.mp4", [(RED, 1.0)])
    Image.new("RGB", (64, 48), GREEN).save(lib / "photo.jpg")
    release = threading.Event()

    def stuck(*_a, **_k):
        release.wait(30)  # FFmpeg spinning on a hostile stream
        raise AssertionError("should have been abandoned")

    monkeypatch.setattr(ingest_mod, "decode_video", stuck)
    try:
        found = scan_and_stage(
            catalog, stage, lib, video=VideoConfig(deadline_seconds=0.5), ingester={"video_grace": 0.2}
        )
    finally:
        release.set()
    assert found["photo.jpg"]["state"] == "staged"
    assert found["hangs.mp4"]["state"] == "failed" and "abandoned" in found["hangs.mp4"]["error"]


def test_a_videos_frames_follow_it_offline_deleted_and_back(catalog, stage, tmp_path):
    lib = tmp_path / "lib"
    mediakit.write_video(lib / "scenes.mp4", [(RED, 2.0), (BLUE, 2.0)])
    found = scan_and_stage(catalog, stage, lib, video=VideoConfig(probe_seconds=0.5))
    vid = found["scenes.mp4"]["id"]
    frames = catalog.frame_ids(vid)
    assert len(frames) == 1 and stage.get_jpeg(frames[0]) is not None
    frame_state = lambda: catalog.scalar("SELECT state FROM photos WHERE id = ?", (frames[0],))  # noqa: E731
    assert frame_state() == "staged"
    root_id = found["scenes.mp4"]["root_id"]
    for _ in range(2):  # a frame has no file, and a scan never takes that for a deletion
        report = reconcile(catalog, catalog.root(root_id), present=lambda: True)
        assert report.deleted == 0 and frame_state() == "staged"
    catalog.set_root_offline(root_id)
    assert frame_state() == "offline"
    catalog.set_root_online(root_id)
    assert frame_state() == "staged"
    catalog.mark_deleted([vid])
    assert frame_state() == "deleted"
    assert set(catalog.purgeable(deleted_before=1e12)) == {vid, frames[0]}
    catalog.purge(catalog.purgeable(deleted_before=1e12))
    assert catalog.scalar("SELECT count(*) FROM photos") == 0


def test_a_video_is_found_once_at_its_best_moment(catalog, data_dir, tmp_path):
    bundle = install_active(data_dir, tmp_path / "bundle")
    lib = tmp_path / "lib"
    mediakit.write_video(lib / "holiday.mp4", [(RED, 3.0), (BLUE, 3.0), (GREEN, 3.0)])
    for i, color in enumerate([(200, 200, 200), (90, 60, 20), (250, 220, 0)]):
        Image.new("RGB", (96, 64), color).save(lib / f"photo_{i}.jpg")
    with Stage(data_dir) as stage:
        found = scan_and_stage(catalog, stage, lib, video=VideoConfig(probe_seconds=0.5))
        assert len(catalog.frame_ids(found["holiday.mp4"]["id"])) == 2
        Indexer(
            catalog,
            stage,
            bundle,
            VectorIndex(data_dir, bundle.image_id),
            WorkersConfig(batch_size=8, encode_threads=1),
        ).run_once()
    query = tmp_path / "blue.jpg"
    Image.new("RGB", (96, 64), BLUE).save(query)
    results = find_once(Config(data_dir=data_dir), Query(like=str(query), k=10, show_all=True)).results
    videos = [r for r in results if r["kind"] == "video"]
    assert len(videos) == 1 and results[0]["kind"] == "video"  # once, and first: its blue moment matched
    assert all(r["kind"] != "frame" for r in results)
    top = results[0]
    assert top["id"] == found["holiday.mp4"]["id"] and top["video_time"] == pytest.approx(3.0)
    assert top["path"].endswith("holiday.mp4") and top["duration"] == pytest.approx(9.0, abs=0.2)
    assert video_label(top) == "「00:03」 / 00:09"
    # The CLI's line and the TUI's card say it; the card shows the moment that matched.
    from photod.cli import _result_line
    from photod.tui.widgets.results import picture_id, result_meta

    assert "holiday.mp4  「00:03」 / 00:09" in _result_line(top)
    assert "「00:03」 / 00:09" in result_meta(top)
    frame = picture_id(top)
    assert frame in catalog.frame_ids(top["id"]) and catalog.photo(frame)["frame_time"] == pytest.approx(3.0)
    assert top["frame_id"] == frame
    assert {r["id"] for r in results} <= set(v["id"] for v in found.values())  # no frame ids leak out


# ---- the shared samples ------------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"samples not found at {SHARED}")
def test_every_shared_sample_ends_indexed_or_failed_with_a_reason(catalog, data_dir, tmp_path):
    bundle = install_active(data_dir, tmp_path / "bundle")
    include = [
        f"*{ext}"
        for ext in (
            ".jpg",
            ".jpeg",
            ".png",
            ".heic",
            ".heif",
            ".avif",
            ".tif",
            ".tiff",
            ".bmp",
            ".gif",
            ".dng",
            ".mov",
            ".mp4",
            ".xmp",
            ".aae",
        )
    ]
    with Stage(data_dir) as stage:
        # Default globs, so sidecars are not even looked at; then every photo file is accounted for.
        root = catalog.add_root(photod.config.make_root(SHARED))
        catalog.set_root_online(root.id)
        reconcile(catalog, catalog.root(root.id), present=lambda: True)
        Ingester(catalog, stage).drain()
        Indexer(
            catalog,
            stage,
            bundle,
            VectorIndex(data_dir, bundle.image_id),
            WorkersConfig(batch_size=16, encode_threads=1),
        ).run_once()
    got = rows(catalog)
    on_disk = {
        p.relative_to(SHARED).as_posix()
        for p in SHARED.rglob("*")
        if p.is_file() and any(p.name.lower().endswith(e) for e in include)
    }
    for rel in sorted(on_disk):
        if Path(rel).suffix.lower() in SIDECARS:
            assert rel not in got, f"{rel}: a sidecar was cataloged"
            continue
        row = got.get(rel)
        assert row is not None, f"{rel}: not cataloged"
        assert row["state"] in ("indexed", "failed"), f"{rel}: left {row['state']}"
        if row["state"] == "failed":
            assert Path(rel).name in row["error"], f"{rel}: {row['error']}"
        if rel.startswith("photoprism-samples/"):
            assert row["state"] == "indexed", f"{rel}: {row['error']}"
    videos = [r for r in got.values() if r["kind"] == "video"]
    assert len(videos) == 5 and all(r["duration"] and r["width"] for r in videos)
    assert catalog.counts()["videos"] == 5


@needs_samples
def test_a_video_shot_upright_is_staged_and_cataloged_upright():
    # The iPhone's HEVC clip is stored 1280x720 with a display matrix turning it a quarter.
    v = decode_video(str(PRISM / "quicktime-hvc1.mov"), "quicktime-hvc1.mov")
    assert (v.meta.width, v.meta.height) == (720, 1280) and v.meta.format == "video HEVC"
    assert v.meta.taken_at == "2023-09-22T18:34:05"  # Apple's local time, not the UTC creation_time
    assert (v.meta.gps_lat, v.meta.gps_lon) == (52.4597, 13.322) and v.meta.camera_model == "iPad mini"
    staged = Image.open(BytesIO(v.moments[0].staged.jpeg))
    assert staged.size == (384, 683)
    # The lamp's white base is at the bottom of the picture as shown, not at a side.
    img = np.asarray(staged.convert("L"), np.float32)
    assert img[500:600, 150:330].mean() > img[:, :60].mean()


def test_a_large_video_is_known_by_samples_and_a_move_keeps_its_id(catalog, stage, tmp_path):
    hashing = {"video_full_hash": 5_000, "video_sample": 1_000}  # so that a small test clip counts as large
    lib = tmp_path / "lib"
    mediakit.write_video(lib / "trip.mp4", [(RED, 2.0), (BLUE, 2.0)])
    assert (lib / "trip.mp4").stat().st_size > 5_000
    found = scan_and_stage(catalog, stage, lib, ingester=hashing)
    before = found["trip.mp4"]
    assert before["state"] == "staged" and before["content_hash"].startswith("sampled:")
    (lib / "2024").mkdir()
    (lib / "trip.mp4").rename(lib / "2024" / "trip.mp4")
    reconcile(catalog, catalog.root(before["root_id"]), present=lambda: True)
    report = Ingester(catalog, stage, **hashing).drain()
    after = rows(catalog)
    assert report.adopted == 1 and after["2024/trip.mp4"]["id"] == before["id"]
    assert after["2024/trip.mp4"]["state"] == "staged"


def test_a_kill_between_a_videos_frame_rows_and_its_stage_entries_leaves_nothing_behind(catalog, stage, tmp_path):
    lib = tmp_path / "lib"
    mediakit.write_video(lib / "scenes.mp4", [(RED, 2.0), (BLUE, 2.0)])
    root = catalog.add_root(photod.config.make_root(lib))
    catalog.set_root_online(root.id)
    reconcile(catalog, catalog.root(root.id), present=lambda: True)
    vid = rows(catalog)["scenes.mp4"]["id"]
    catalog.add_frames(vid, [0.7, 1.4])  # the rows of a staging that was killed right after
    assert catalog.pending("new", 10) and all(r["kind"] != "frame" for r in catalog.pending("new", 10))
    ingest_mod.check_stage_consistency(catalog, stage)
    Ingester(catalog, stage, video=VideoConfig(probe_seconds=0.5)).drain()
    frames = catalog.frame_ids(vid)
    assert [catalog.photo(f)["frame_time"] for f in frames] == [2.0]  # the sampled moment, not the killed ones
    assert catalog.scalar("SELECT count(*) FROM photos WHERE kind = 'frame'") == 1
    assert catalog.staged_ids() == set(stage.keys()) == {vid, *frames}


def test_a_batch_takes_at_most_one_video_per_decode_worker(catalog, stage, tmp_path):
    lib = tmp_path / "lib"
    for i in range(5):
        mediakit.write_video(lib / f"clip_{i}.mp4", [((40 * i, 90, 200), 0.5)])
    Image.new("RGB", (64, 48), GREEN).save(lib / "photo.jpg")
    root = catalog.add_root(photod.config.make_root(lib))
    catalog.set_root_online(root.id)
    reconcile(catalog, catalog.root(root.id), present=lambda: True)
    ingester = Ingester(catalog, stage, workers=2)
    assert ingester.ingest_batch(64).staged == 3  # two videos and the photo; three videos wait
    assert ingester.drain().staged == 3 and catalog.counts()["new"] == 0


def test_videos_off_means_a_failed_row_that_says_so(catalog, stage, tmp_path):
    lib = tmp_path / "lib"
    mediakit.write_video(lib / "clip.mp4", [(RED, 0.5)])
    found = scan_and_stage(catalog, stage, lib, video=VideoConfig(enabled=False))
    row = found["clip.mp4"]
    assert row["state"] == "failed" and row["kind"] == "video" and "enabled = false" in row["error"]
