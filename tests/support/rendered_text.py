"""Chinese and English phrases rendered onto real photos, for the OCR tests and benchmark.

A phrase is drawn with WenQuanYi Micro Hei (../shared/fonts) at a height given as a share of the photo's
height, in a colour that contrasts with what lies under it, on a slight tilt, over the photo itself (busy
backgrounds included), the way a sign or a caption sits in a picture. Each phrase carries the word a
search would use, so a test can ask whether searching that word would find the photo.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FONT = SHARED / "fonts" / "wqy-microhei.ttc"
PHOTOS = SHARED / "photos"


@dataclass(frozen=True)
class Phrase:
    text: str
    word: str  # what a person would search for


PHRASES = (
    Phrase("三亚湾海鲜大排档", "海鲜"),
    Phrase("欢迎光临北京饭店", "北京饭店"),
    Phrase("禁止吸烟", "吸烟"),
    Phrase("生日快乐 小白", "生日快乐"),
    Phrase("西湖龙井茶叶", "龙井"),
    Phrase("出口 EXIT", "出口"),
    Phrase("Grand Hotel Sanya", "Hotel"),
    Phrase("OPEN 24 HOURS", "HOURS"),
    Phrase("上海浦东国际机场", "浦东"),
    Phrase("Happy New Year 2019", "Happy"),
    Phrase("停车场入口", "停车场"),
    Phrase("Coffee & Books", "Coffee"),
)


def sample_photos(limit: int | None = None) -> list[Path]:
    """Real camera JPEGs from ../shared/photos (exif-samples and photoprism-samples), in a stable order."""
    found = sorted((PHOTOS / "exif-samples" / "jpg").rglob("*.jpg")) + sorted(
        p for p in (PHOTOS / "photoprism-samples").glob("*.jpg") if "E4120" not in p.name
    )
    return found[:limit] if limit else found


def as_large_photo(path: Path, side: int = 4000) -> Image.Image:
    """A sample photo, upright and RGB, scaled so its longer side is `side` (a 12-MP camera's is 4000)."""
    from PIL import ImageOps

    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        scale = side / max(img.size)
        return img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)


def render(photo: Image.Image, phrase: Phrase | str, height_share: float, seed: int = 0) -> Image.Image:
    """`photo` with `phrase` drawn on it, its characters `height_share` of the photo's height tall."""
    text = phrase.text if isinstance(phrase, Phrase) else phrase
    rng = random.Random(seed)
    size = max(6, round(photo.height * height_share))
    font = ImageFont.truetype(str(FONT), size)
    left, top, right, bottom = font.getbbox(text)
    layer = Image.new("L", (right - left + size, bottom - top + size), 0)
    ImageDraw.Draw(layer).text((size // 2 - left, size // 2 - top), text, fill=255, font=font)
    layer = layer.rotate(rng.uniform(-5, 5), resample=Image.Resampling.BICUBIC, expand=True)
    if layer.width >= photo.width:  # a phrase wider than the photo: shrink it to fit
        layer = layer.resize((photo.width - 2, max(1, layer.height * (photo.width - 2) // layer.width)))
    x = rng.randint(0, photo.width - layer.width)
    y = rng.randint(0, max(0, photo.height - layer.height))
    under = np.asarray(photo.crop((x, y, x + layer.width, y + layer.height)).convert("L"), dtype=np.float32)
    ink = (20, 20, 20) if under.mean() > 128 else (245, 245, 245)
    if rng.random() < 0.3:  # now and then a coloured sign
        ink = rng.choice([(200, 30, 30), (250, 210, 40), (30, 90, 200)])
    out = photo.copy()
    out.paste(Image.new("RGB", layer.size, ink), (x, y), layer)
    return out


def found(text: str, word: str) -> bool:
    """Whether searching `word` would find a photo whose text is `text` (spaces and case ignored)."""
    squeeze = lambda t: "".join(t.split()).casefold()  # noqa: E731
    return squeeze(word) in squeeze(text)
