"""photod's image preprocessing against cn_clip's torchvision transform, on real photos and odd modes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageFile

from photod.errors import DecodeError, ModelError
from photod.model.preprocess import CLIP_MEAN, CLIP_STD, image_transform, preprocess_batch

TOLERANCE = 1e-5
SIZES = [224, 336]

# Landscape, portrait, extreme strips, up- and downscaling, RGBA TIFFs (one with a non-ASCII name).
SAMPLE_FILES = [
    "jpg/Canon_PowerShot_S40.jpg",  # 480x360
    "jpg/Fujifilm_FinePix_E500.jpg",  # 59x100, upscaled
    "jpg/orientation/portrait_1.jpg",  # 450x600
    "jpg/invalid/image01713.jpg",  # 49x500
    "jpg/invalid/image01980.jpg",  # 284x25
    "jpg/Reconyx_HC500_Hyperfire.jpg",  # 2048x1536
    "tiff/BSG1.tiff",  # RGBA
    "tiff/Crémieux11.tiff",  # RGBA, 199x47
]


def test_module_needs_neither_torch_nor_cn_clip():
    # The daemon runs where torch cannot be installed; importing this module must not pull it in.
    code = (
        "import sys, photod.model.preprocess; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'cn_clip')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def cn_clip_transform():
    clip = pytest.importorskip("cn_clip.clip")
    transforms = {size: clip.image_transform(size) for size in SIZES}
    return lambda img, size: transforms[size](img).numpy()


def _noisy_rgb(width: int, height: int, seed: int) -> np.ndarray:
    """Gradients plus noise: smooth areas and sharp edges, so bicubic overshoot and clipping both occur."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x ^ y) & 255], axis=-1)
    noise = rng.integers(-60, 61, size=base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _generated(kind: str) -> Image.Image:
    rgb = Image.fromarray(_noisy_rgb(301, 187, seed=len(kind)))
    if kind == "RGBA":
        alpha = Image.fromarray(np.tile(np.linspace(0, 255, 301).astype(np.uint8), (187, 1)))
        return Image.merge("RGBA", (*rgb.split(), alpha))
    if kind == "LA":
        return rgb.convert("LA")
    if kind == "L":
        return rgb.convert("L")
    if kind == "P":
        return rgb.quantize(colors=64)
    if kind == "P-transparent":
        img = rgb.quantize(colors=16)
        img.info["transparency"] = 3
        return img
    if kind == "1":
        return rgb.convert("1")
    if kind == "CMYK":
        return rgb.convert("CMYK")
    if kind == "I;16":
        img = Image.fromarray(_noisy_rgb(120, 90, seed=7)[..., 0].astype(np.uint16) * 257)
        assert img.mode == "I;16"
        return img
    if kind == "tiny":
        return Image.fromarray(_noisy_rgb(1, 1, seed=1))
    if kind == "exact-224":
        return Image.fromarray(_noisy_rgb(224, 224, seed=2))
    if kind == "strip":
        return Image.fromarray(_noisy_rgb(1000, 3, seed=3))
    raise AssertionError(kind)


GENERATED = ["RGBA", "LA", "L", "P", "P-transparent", "1", "CMYK", "I;16", "tiny", "exact-224", "strip"]


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.float64) - b).max())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_real_photos_match_cn_clip(samples, cn_clip_transform, name, size):
    with Image.open(samples / name) as img:
        img.load()
        ours = image_transform(img, size, CLIP_MEAN, CLIP_STD)
        theirs = cn_clip_transform(img, size)
    assert ours.dtype == np.float32 and ours.shape == (3, size, size)
    assert _max_diff(ours, theirs) <= TOLERANCE


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", GENERATED)
def test_generated_images_of_every_mode_match_cn_clip(cn_clip_transform, kind, size):
    img = _generated(kind)
    ours = image_transform(img, size)
    assert ours.shape == (3, size, size)
    assert _max_diff(ours, cn_clip_transform(img, size)) <= TOLERANCE


def test_values_are_normalised_pixels():
    # A flat colour stays flat through the resize, so each channel is exactly (v/255 - mean) / std.
    out = image_transform(Image.new("RGB", (50, 80), (255, 0, 128)), 224)
    expected = (np.array([255, 0, 128]) / 255 - np.array(CLIP_MEAN)) / np.array(CLIP_STD)
    np.testing.assert_allclose(out.reshape(3, -1).mean(axis=1), expected, atol=1e-6)
    assert float(out.std(axis=(1, 2)).max()) < 1e-6


def test_batch_equals_single_images(samples):
    with Image.open(samples / SAMPLE_FILES[0]) as photo:
        images = [photo.copy(), _generated("RGBA"), _generated("P")]
    batch = preprocess_batch(images, 224, CLIP_MEAN, CLIP_STD)
    assert batch.dtype == np.float32 and batch.shape == (3, 3, 224, 224)
    for row, img in zip(batch, images):
        np.testing.assert_array_equal(row, image_transform(img, 224))
    assert preprocess_batch([], 336).shape == (0, 3, 336, 336)


def test_other_mean_and_std_are_used():
    img = _generated("L")
    a = image_transform(img, 32)
    b = image_transform(img, 32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert not np.allclose(a, b)
    assert b.min() >= -1.0 and b.max() <= 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 0}, "input size 0"),
        ({"size": 224, "mean": (0.5, 0.5)}, "three finite numbers"),
        ({"size": 224, "std": (0.5, 0.0, 0.5)}, "has a zero"),
    ],
)
def test_bad_bundle_values_are_refused(kwargs, message):
    with pytest.raises(ModelError, match=message):
        image_transform(Image.new("RGB", (4, 4)), **kwargs)


def test_truncated_file_raises_decode_error_naming_it(samples, tmp_path, monkeypatch):
    # Pillow's global switch could be flipped by other code in the same process; this test needs it off.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    source = samples / SAMPLE_FILES[0]
    broken = tmp_path / "broken.jpg"
    data = source.read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # headers intact, image data cut
    with Image.open(broken) as img:
        with pytest.raises(DecodeError, match="broken.jpg"):
            image_transform(img, 224)
