"""A small, deterministic photo library for the terminal UI's tests: real catalog rows, real staged JPEGs.

The roots live at fixed, made-up paths (/photos/...): the UI never reads originals (pictures come from
the stage), and fixed paths keep snapshots identical from run to run.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from photod.config import Config, RootConfig
from photod.store.catalog import Catalog, PhotoMeta
from photod.store.stage import Stage

MTIME_NS = 1_600_000_000_000_000_000
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class Shot:
    root: str
    rel_path: str
    taken_at: str | None
    make: str | None
    model: str | None
    colour: tuple[int, int, int]
    size: tuple[int, int] = (384, 288)
    lens: str | None = None
    gps: tuple[float, float] | None = None


SHOTS = [
    Shot("family", "2019/三亚婚礼/IMG_0001.jpg", "2019-05-01T10:00:00", "Canon", "Canon EOS 5D", (200, 40, 40)),
    Shot("family", "2019/三亚婚礼/IMG_0002.jpg", "2019-05-01T11:30:00", "Canon", "Canon EOS 5D", (230, 140, 30)),
    Shot(
        "family",
        "2021/cat/cat_sofa.jpg",
        "2021-03-02T20:15:00",
        "Apple",
        "iPhone 12",
        (40, 80, 210),
        size=(288, 384),
        gps=(22.54312, 114.05786),
    ),
    Shot("family", "2021/cat/cat_window.jpg", "2021-03-05T09:00:00", "Apple", "iPhone 12", (40, 170, 60)),
    Shot(
        "family",
        "2023/beach/sunset.jpg",
        "2023-08-10T19:45:00",
        "Sony",
        "ILCE-7M3",
        (150, 50, 160),
        lens="FE 24-70mm F2.8 GM",
    ),
    Shot("nas", "archive/old_scan.jpg", "2005-01-01T00:00:00", None, None, (128, 128, 128)),
]
ROOTS = {"family": "/photos/family", "nas": "/mnt/nas/photos"}


def jpeg(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    """A real JPEG: a coloured field with a lighter band, so a thumbnail has something to show."""
    img = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(img)
    w, h = size
    light = tuple(min(255, c + 90) for c in colour)
    draw.rectangle([0, h * 2 // 3, w, h], fill=light)
    draw.ellipse([w // 3, h // 6, w // 3 + w // 4, h // 6 + w // 4], fill=(250, 240, 200))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def build_library(data_dir: Path, shots: list[Shot] = SHOTS, failed: bool = True) -> dict[str, int]:
    """Catalog and stage `shots` under data_dir; returns photo ids by filename."""
    ids: dict[str, int] = {}
    with Catalog.in_data_dir(data_dir) as cat, Stage(data_dir) as stage:
        roots = {label: cat.add_root(RootConfig(path=Path(path), label=label)) for label, path in ROOTS.items()}
        for root in roots.values():
            cat.update_root(root.id, online=1, watch_mode="inotify", fs_type="ext4")
        staged: dict[int, bytes] = {}
        for shot in shots:
            data = jpeg(shot.colour, shot.size)
            pid, _ = cat.upsert_file(roots[shot.root].id, shot.rel_path, len(data), MTIME_NS)
            meta = PhotoMeta(
                width=shot.size[0] * 10,
                height=shot.size[1] * 10,
                format="JPEG",
                taken_at=shot.taken_at,
                camera_make=shot.make,
                camera_model=shot.model,
                lens=shot.lens,
                orientation=1,
                gps_lat=shot.gps[0] if shot.gps else None,
                gps_lon=shot.gps[1] if shot.gps else None,
            )
            cat.mark_staged(pid, meta, content_hash=f"hash-{pid}")
            staged[pid] = data
            ids[Path(shot.rel_path).name] = pid
        stage.put_many(staged)
        if failed:
            pid, _ = cat.upsert_file(roots["family"].id, "2020/broken.jpg", 10, MTIME_NS)
            cat.mark_failed(pid, "cannot identify image file (truncated or not a photo)")
            ids["broken.jpg"] = pid
    return ids


def library_config(data_dir: Path) -> Config:
    return Config(data_dir=data_dir)


def write_config(path: Path, data_dir: Path) -> Path:
    path.write_text(f'[daemon]\ndata_dir = "{data_dir}"\n', encoding="utf-8")
    return path
