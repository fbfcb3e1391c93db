"""A synthetic captioned photo library: coloured shapes with Chinese captions ("红色的圆形", "两个蓝色的方块").

Used by the tests and benchmarks to run the whole fine-tuning path on a CPU in seconds: real JPEG files in
a real root, catalogued and staged by photod's own scanner-side calls and ingester, captioned through the
catalog, then built into a dataset, trained, evaluated and exported like a person's library would be.

Every image is drawn from its concept with seeded jitter (position, size, shade, background noise), so two
photos of one concept differ but share what the caption says.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from PIL import Image, ImageDraw

from photod.config import StageConfig, make_root
from photod.finetune.dataset import DatasetInfo, write_dataset
from photod.ingest.ingester import Ingester
from photod.labels.captions import Label
from photod.store.catalog import Catalog
from photod.store.stage import Stage

log = logging.getLogger(__name__)

COLOURS: dict[str, tuple[int, int, int]] = {
    "红色": (220, 30, 30),
    "绿色": (30, 170, 50),
    "蓝色": (30, 60, 220),
    "黄色": (240, 220, 20),
    "紫色": (150, 40, 190),
    "橙色": (250, 130, 0),
    "白色": (245, 245, 245),
    "青色": (20, 200, 200),
}
SHAPES = ("圆形", "方块", "三角形")
COUNT_WORDS = {1: "", 2: "两个", 3: "三个"}


@dataclass(frozen=True)
class Concept:
    """What a synthetic photo shows, and so what its caption says."""

    colour: str
    shape: str
    count: int = 1

    @property
    def caption(self) -> str:
        return f"{COUNT_WORDS[self.count]}{self.colour}的{self.shape}"


def concepts(colours: Iterable[str], shapes: Iterable[str] = SHAPES, counts: Iterable[int] = (1,)) -> list[Concept]:
    """Every combination of the given colours, shapes and counts."""
    return [Concept(c, s, n) for n in counts for c in colours for s in shapes]


def draw(concept: Concept, size: int, rng: random.Random) -> Image.Image:
    """One photo of `concept`: `count` shapes of its colour on a dark, noisy background."""
    bg = tuple(rng.randint(20, 70) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    pen = ImageDraw.Draw(img)
    cells = _cells(concept.count, size)
    for x0, y0, cell in cells:
        r = cell * rng.uniform(0.28, 0.42)
        cx = x0 + cell / 2 + rng.uniform(-0.08, 0.08) * cell
        cy = y0 + cell / 2 + rng.uniform(-0.08, 0.08) * cell
        colour = tuple(max(0, min(255, v + rng.randint(-20, 20))) for v in COLOURS[concept.colour])
        if concept.shape == "圆形":
            pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        elif concept.shape == "方块":
            pen.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            pen.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=colour)
    return img


def _cells(count: int, size: int) -> list[tuple[float, float, float]]:
    """Where `count` shapes go: one centred, or side by side."""
    if count == 1:
        return [(size * 0.1, size * 0.1, size * 0.8)]
    cell = size / count
    return [(i * cell, (size - cell) / 2, cell) for i in range(count)]


def make_labels(
    all_concepts: list[Concept], per_concept: int, *, size: int = 64, seed: int = 0
) -> tuple[list[Label], dict[int, bytes]]:
    """Labels and JPEG bytes with made-up photo ids (1, 2, ...): a dataset without a library."""
    from io import BytesIO

    rng = random.Random(seed)
    labels, jpegs = [], {}
    for concept in all_concepts:
        for _ in range(per_concept):
            pid = len(jpegs) + 1
            buf = BytesIO()
            draw(concept, size, rng).save(buf, "JPEG", quality=90)
            jpegs[pid] = buf.getvalue()
            labels.append(Label(pid, concept.caption, "user"))
    return labels, jpegs


def make_dataset(
    out_dir: str | os.PathLike,
    all_concepts: list[Concept],
    per_concept: int,
    *,
    size: int = 64,
    seed: int = 0,
    valid_per_concept: int = 1,
) -> DatasetInfo:
    """A dataset folder straight from drawn images (no catalog), e.g. to pre-train a small base model.

    The first `valid_per_concept` photos of every concept are held out.
    """
    labels, jpegs = make_labels(all_concepts, per_concept, size=size, seed=seed)
    valid = {lab.photo_id for i, lab in enumerate(labels) if i % per_concept < valid_per_concept}
    return write_dataset(
        out_dir,
        labels,
        valid,
        jpegs.get,
        seed=seed,
        valid_fraction=len(valid) / max(1, len(labels)),
        source="synthetic",
    )


@dataclass
class SyntheticLibrary:
    """A catalogued, staged synthetic library."""

    data_dir: Path
    root: Path
    photos: dict[Concept, list[int]] = field(default_factory=dict)  # photo ids by concept
    paths: dict[int, Path] = field(default_factory=dict)

    def concept_of(self, photo_id: int) -> Concept:
        return next(c for c, ids in self.photos.items() if photo_id in ids)


def make_library(
    data_dir: str | os.PathLike,
    root: str | os.PathLike,
    all_concepts: list[Concept],
    per_concept: int,
    *,
    size: int = 64,
    seed: int = 0,
    caption: Iterable[Concept] | None = None,
) -> SyntheticLibrary:
    """Draw `per_concept` photos of each concept as JPEG files under `root/<caption>/`, catalogue and stage
    them with photod's catalog and ingester, and caption the photos of the concepts in `caption` (all when
    None) through the catalog."""
    data_dir, root = Path(data_dir), Path(root)
    rng = random.Random(seed)
    to_caption = set(all_concepts if caption is None else caption)
    lib = SyntheticLibrary(data_dir=data_dir, root=root)
    files: list[tuple[Concept, str]] = []
    for concept in all_concepts:
        folder = root / concept.caption
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_concept):
            rel = f"{concept.caption}/{i:03d}.jpg"
            draw(concept, size, rng).save(root / rel, "JPEG", quality=92)
            files.append((concept, rel))
    with Catalog.in_data_dir(data_dir) as catalog, Stage(data_dir) as stage:
        r = catalog.add_root(make_root(root))
        catalog.set_root_online(r.id)
        for concept, rel in files:
            st = (root / rel).stat()
            pid, _ = catalog.upsert_file(r.id, rel, st.st_size, st.st_mtime_ns)
            lib.photos.setdefault(concept, []).append(pid)
            lib.paths[pid] = root / rel
        Ingester(catalog, stage, StageConfig(size=max(size, 64)), workers=1).drain(limit=256)
        with catalog.transaction():
            for concept in to_caption:
                for pid in lib.photos[concept]:
                    catalog.add_caption(pid, concept.caption, "user")
    log.info("synthetic library: %d photos of %d concepts in %s", len(files), len(all_concepts), root)
    return lib
