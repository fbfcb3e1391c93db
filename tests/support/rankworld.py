"""A labelled world for ranking: synthetic photos whose relevant sets are known, searched through photod.

Each photo shows discs of one colour; red and yellow are 暖色 (warm), green and blue 冷色 (cool). A small model
of cn_clip's classes is trained (both towers) on such photos captioned with their colour and their tone, so it
knows both words (at 64 pixels it learns colours well, shapes and counts not at all: the world is built of
what it can learn); photos drawn the same way are then cataloged under neutral file names, staged and
encoded by photod, and given the other channels' signals as the daemon would store them: places from GPS
through the real gazetteer, text in photos, captions, and dates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw

from photod.finetune.checkpoint import load_model
from photod.finetune.dataset import write_dataset
from photod.finetune.train import TrainConfig, Trainer, save_model_checkpoint
from photod.labels.captions import Label
from photod.model.tokenizer import Tokenizer
from tests.support.smallmodels import build_small_checkpoint
from tests.support.synthetic import COLOURS as RGB

TONES = {"红色": "暖色", "黄色": "暖色", "绿色": "冷色", "蓝色": "冷色", "紫色": None}
COLOURS = tuple(TONES)
TRAIN_STEPS = 200


@dataclass(frozen=True)
class Kind:
    """What a photo shows: discs of one colour; red and yellow are 暖色 (warm), green and blue 冷色 (cool)."""

    colour: str

    @property
    def tone(self) -> str | None:
        return TONES[self.colour]

    @property
    def captions(self) -> tuple[str, ...]:
        return (self.colour,) + ((self.tone, f"{self.tone}的{self.colour}") if self.tone else ())


KINDS = [Kind(colour) for colour in COLOURS]


def draw(kind: Kind, size: int, rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (size, size), tuple(rng.randint(20, 70) for _ in range(3)))
    pen = ImageDraw.Draw(img)
    count = rng.choice((1, 1, 2))
    cell = size / count
    for i in range(count):
        r = cell * rng.uniform(0.3, 0.4)
        cx = i * cell + cell / 2 + rng.uniform(-0.05, 0.05) * cell
        cy = size / 2 + rng.uniform(-0.1, 0.1) * size
        fill = tuple(max(0, min(255, v + rng.randint(-20, 20))) for v in RGB[kind.colour])
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    return img


def jpeg(img: Image.Image) -> bytes:
    buf = BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def train_model(work: Path, vocab: Path, steps: int = TRAIN_STEPS) -> tuple[Path, Path, Path]:
    """A small ViT trained on the kinds, each photo captioned with its colour, its tone and both:
    (checkpoint, vision config, text config)."""
    ckpt, vision, text = build_small_checkpoint(work / "random", "vit", seed=0)
    rng = random.Random(1)
    labels, jpegs = [], {}
    for kind in KINDS:
        for _ in range(12):
            pid = len(jpegs) + 1
            jpegs[pid] = jpeg(draw(kind, 64, rng))
            labels += [Label(pid, text, "user") for text in kind.captions]
    info = write_dataset(work / "dataset", labels, set(), jpegs.get, seed=0, valid_fraction=0.0, source="synthetic")
    model = load_model(ckpt, vision_config=vision, text_config=text).model
    cfg = TrainConfig(mode="full", max_steps=steps, batch_size=32, lr=2e-3, save_every=0, progress=False)
    trainer = Trainer(
        model, info.lmdb_dir("train"), cfg, work / "checkpoints", tokenizer=Tokenizer.from_vocab(vocab), image_size=64
    )
    trainer.fit(resume=False)
    return save_model_checkpoint(trainer.model, work / "trained.pt"), vision, text
