"""Image preprocessing for Chinese-CLIP's image tower, with Pillow and NumPy only.

Chinese-CLIP feeds its image encoder through torchvision's
Resize((size, size), BICUBIC) -> convert("RGB") -> ToTensor -> Normalize(mean, std).
On a PIL image, torchvision's Resize is nothing but Pillow's own `Image.resize(..., BICUBIC)` (Pillow
always antialiases when downscaling; torchvision's `antialias` flag applies to tensors only), skipped when
the image already has the target size. So calling Pillow the same way, in the same order (resize first,
then RGB), gives the very same pixels, and the arithmetic below (uint8 -> float32 / 255, minus mean,
divided by std, all in float32) gives the very same floats.

The resize is square and does not keep the aspect ratio: that is how Chinese-CLIP was trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from photod.errors import DecodeError, ModelError

# OpenAI CLIP's per-channel statistics, which Chinese-CLIP uses unchanged.
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


def _channel_stats(mean: Sequence[float], std: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """mean and std as float32 (3, 1, 1) arrays, ready to broadcast over a CHW image."""
    m = np.asarray(mean, dtype=np.float32)
    s = np.asarray(std, dtype=np.float32)
    if m.shape != (3,) or s.shape != (3,) or not np.all(np.isfinite(m)) or not np.all(np.isfinite(s)):
        raise ModelError(
            f"image mean {list(mean)!r} and std {list(std)!r} must be three finite numbers each (R, G, B)",
            "check image_mean/image_std in the model bundle's manifest.json",
        )
    if np.any(s == 0):
        raise ModelError(
            f"image std {list(std)!r} has a zero, which would divide by zero",
            "check image_std in the model bundle's manifest.json",
        )
    return m.reshape(3, 1, 1), s.reshape(3, 1, 1)


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ModelError(
            f"image input size {size!r} is not usable: it must be a positive integer",
            "check the input resolution in the model bundle's manifest.json",
        )


def _to_model_pixels(img: Image.Image, size: int) -> np.ndarray:
    """The (size, size, 3) uint8 RGB pixels Chinese-CLIP's transform would see."""
    try:
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except OSError as e:
        # Pillow decodes lazily, so a truncated or broken file first fails here.
        name = getattr(img, "filename", "") or "image"
        raise DecodeError(f"cannot decode {name}: {e}", "the file may be truncated or damaged") from e


def _normalise_into(out: np.ndarray, pixels: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    # Same float32 steps, in the same order, as ToTensor + Normalize, so results agree to the last bit.
    chw = pixels.transpose(2, 0, 1).astype(np.float32)
    np.divide(chw, np.float32(255), out=out)
    np.subtract(out, mean, out=out)
    np.divide(out, std, out=out)


def image_transform(
    img: Image.Image,
    size: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> np.ndarray:
    """One image as the image model's input: float32 array of shape (3, size, size)."""
    image: np.ndarray = preprocess_batch([img], size, mean, std)[0]
    return image


def preprocess_batch(
    images: Sequence[Image.Image],
    size: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> np.ndarray:
    """Several images as one model batch: float32 array of shape (n, 3, size, size)."""
    _check_size(size)
    m, s = _channel_stats(mean, std)
    batch = np.empty((len(images), 3, size, size), dtype=np.float32)
    for i, img in enumerate(images):
        _normalise_into(batch[i], _to_model_pixels(img, size), m, s)
    return batch
