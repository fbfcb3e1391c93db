"""Turning a photo file's bytes into the small upright RGB JPEG the stage keeps, plus what it says about itself.

Decoding happens once per photo: later passes (encoding, re-encoding after a finetune) read the stage, not
the original. So this is where every oddity of real files is dealt with: EXIF orientation, CMYK, 16-bit,
palettes, alpha, animated GIFs, HEIC, and files that are not photos at all. A file that cannot be decoded
raises DecodeError with a reason a person can act on; it costs one failed row, never the daemon.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from photod.config import StageConfig
from photod.errors import DecodeError
from photod.ingest.exif import read_exif
from photod.store.catalog import PhotoMeta

log = logging.getLogger(__name__)

try:
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError as _exc:  # the daemon still stages every other format
    log.warning("pillow-heif is not importable (%s): HEIC/HEIF photos will fail; reinstall photod", _exc)

try:
    import pillow_jxl  # noqa: F401 - registers the JXL format with Pillow on import
except ImportError:  # the `jxl` extra; without it a .jxl file fails with Pillow's "not an image" reason
    pass

# The formats a camera, phone or scanner writes. Pillow can open more (EPS, for one, runs Ghostscript), but a
# file in a photo folder claiming to be something exotic is not worth that risk.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP", "DIB", "GIF", "HEIF", "AVIF", "JXL")

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Decoded:
    """The staged JPEG and the metadata learned on the way; with `text_image`, the larger upright copy that
    text in the photo is read from (photod.ingest.ocr), made while the original is decoded anyway."""

    jpeg: bytes
    meta: PhotoMeta
    text_image: Image.Image | None = None


def content_hash(data: bytes) -> str:
    """blake2b-256 of a whole file, hex: how a moved or renamed photo is recognised."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def decode_photo(
    data: bytes,
    name: str,
    size: int = StageConfig.size,
    quality: int = StageConfig.quality,
    draft: bool = StageConfig.jpeg_draft,
    text_side: int | None = None,
) -> Decoded:
    """Decode `data` (the file `name`) into an upright RGB JPEG whose shorter side is `size` (never upscaled),
    and, with `text_side`, also an upright RGB copy whose longer side is at most `text_side` to read text in.

    Raises DecodeError naming `name` and the reason for anything that is not a decodable photo.
    """
    if not data:
        raise DecodeError(f"{name}: empty file (0 bytes)", "the copy may still be running or have failed")
    try:
        with Image.open(BytesIO(data), formats=_formats()) as img:
            return _decode(img, name, size, quality, draft, text_side)
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"{name}: {_bomb_text(exc)}", "photod refuses images this large") from None
    except UnidentifiedImageError:
        raise DecodeError(f"{name}: not an image Pillow can read (text file? a format photod does not read?)") from None
    except OSError as exc:
        raise DecodeError(f"{name}: {_os_error_text(exc)}") from None
    except MemoryError:
        raise DecodeError(f"{name}: not enough memory to decode it", "lower workers.decode in config") from None
    except Exception as exc:  # a plugin choking on a malformed file is that file's failure, not the daemon's
        log.debug("decoding %s failed", name, exc_info=True)
        raise DecodeError(f"{name}: cannot decode ({type(exc).__name__}: {exc})") from None


@functools.cache
def _formats() -> tuple[str, ...]:
    Image.init()  # load every plugin, so that the formats this Pillow build lacks can be left out
    return tuple(f for f in PHOTO_FORMATS if f in Image.OPEN)


def _decode(img: Image.Image, name: str, size: int, quality: int, draft: bool, text_side: int | None) -> Decoded:
    _check_pixels(img, name)
    fmt = img.format
    exif = read_exif(img)
    width, height = img.size
    if exif["orientation"] in _TRANSPOSED:
        width, height = height, width
    # Animated GIF/WebP/APNG, multi-page TIFF: Image.open leaves the first frame current, and that is the
    # photo; asking for n_frames would make Pillow scan every frame of a long GIF.
    if draft and isinstance(img, JpegImagePlugin.JpegImageFile):
        _draft(img, size, text_side)
    _exif_transpose(img, name)
    staged = from_image(img, name, size, quality, text_side)
    meta = PhotoMeta(width=width, height=height, format=fmt, **exif)
    return Decoded(staged.jpeg, meta, staged.text_image)


def from_image(
    img: Image.Image,
    name: str,
    size: int = StageConfig.size,
    quality: int = StageConfig.quality,
    text_side: int | None = None,
) -> Decoded:
    """The stage's JPEG (and text copy) of an image that is already upright, whatever produced it (a still,
    a RAW's preview or demosaic, a video frame); its meta holds only the size."""
    _check_pixels(img, name)
    rgb = _to_rgb(img)
    text_image = _fit_long_side(rgb, text_side) if text_side else None
    rgb = _downscale(rgb, size)
    buf = BytesIO()
    rgb.save(buf, "JPEG", quality=quality)
    return Decoded(buf.getvalue(), PhotoMeta(width=img.width, height=img.height), text_image)


def _check_pixels(img: Image.Image, name: str) -> None:
    # Pillow only warns between MAX_IMAGE_PIXELS and twice that; photod treats the warning level as the
    # limit. Checked here rather than with warnings filters, which are process-global and not thread-safe.
    limit = Image.MAX_IMAGE_PIXELS
    w, h = img.size
    if limit and w * h > limit:
        raise DecodeError(
            f"{name}: {w}x{h} pixels exceeds the decompression-bomb limit ({limit:,} pixels)",
            "photod refuses images this large",
        )


def _bomb_text(exc: Exception) -> str:
    # Pillow's message gives the pixel count, not the dimensions: "Image size (N pixels) exceeds limit ..."
    digits = [int(tok.strip("(")) for tok in str(exc).split() if tok.strip("(").isdigit()]
    pixels = f"{digits[0]:,} pixels" if digits else "the image"
    return f"{pixels} exceeds the decompression-bomb limit ({Image.MAX_IMAGE_PIXELS:,} pixels)"


def _os_error_text(exc: OSError) -> str:
    text = str(exc)
    if any(sign in text.lower() for sign in ("truncated", "broken data stream", "premature end")):
        return f"truncated image data ({text}); the file is incomplete: still copying, or damaged"
    return f"cannot decode: {text}"


def _draft(img: JpegImagePlugin.JpegImageFile, size: int, text_side: int | None = None) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale, keeping the shorter side at least `size` (and the longer
    at least `text_side`, when text is read from the same decode)."""
    w, h = img.size
    scale = size / min(w, h)
    if text_side:
        scale = max(scale, text_side / max(w, h))
    if scale >= 0.5:
        return  # no power-of-two reduction would keep the sides that large
    img.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))


def _fit_long_side(img: Image.Image, side: int) -> Image.Image:
    """`img` with its longer side at most `side` (never upscaled): the copy text is read from."""
    w, h = img.size
    if max(w, h) <= side:
        return img
    scale = side / max(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR, reducing_gap=2.0)


def _exif_transpose(img: Image.Image, name: str) -> None:
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except OSError:
        raise  # pixel data is broken (truncated): that is a decode failure
    except Exception as exc:  # an unreadable orientation tag: keep the pixels as stored
        log.debug("%s: EXIF orientation ignored: %s", name, exc)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB, with alpha composited onto a backdrop that what is opaque stands out from, and
    16-bit scaled rather than clipped."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, _backdrop(rgba))
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return _high_depth_to_rgb(img)
    # CMYK, YCbCr, L, 1, P: Pillow's own conversions are right for these. (CMYK JPEGs written by Adobe
    # software are stored inverted; the JPEG plugin already undoes that.)
    return img.convert("RGB")


_BACKDROP_SAMPLE = 512  # longer side of the sample whose opaque pixels choose the backdrop of transparency


def _backdrop(rgba: Image.Image) -> tuple[int, int, int, int]:
    """White, or black when what is opaque is light on average: white text on a transparent sticker, logo,
    chat image or exported slide would otherwise become white on white, lost to the text reader, the model
    and the thumbnail alike (all three see these pixels)."""
    # Sampled, not averaged: a box filter on unpremultiplied pixels would mix the hidden colour of
    # transparent pixels into thin strokes' edges.
    step = max(1, math.ceil(max(rgba.size) / _BACKDROP_SAMPLE))
    sample = rgba.resize((max(1, rgba.width // step), max(1, rgba.height // step)), Image.Resampling.NEAREST)
    pixels = np.asarray(sample, dtype=np.float32).reshape(-1, 4)
    weight = float(pixels[:, 3].sum())
    if not weight:
        return (255, 255, 255, 255)
    luma = pixels[:, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's "L"
    return (0, 0, 0, 255) if float(luma @ pixels[:, 3]) / weight > 127.5 else (255, 255, 255, 255)


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    # Pillow's convert("L") from 16-bit clips everything above 255 to white; scale the range instead.
    arr = np.asarray(img)
    if arr.dtype.kind == "f":
        top = 1.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else 255.0
        gray = np.clip(np.nan_to_num(arr) / top * 255.0, 0, 255)
    else:
        arr = arr.astype(np.int64)
        top = 65535 if img.mode in _SIXTEEN_BIT or int(arr.max(initial=0)) > 255 else 255
        gray = np.clip(arr, 0, top) * 255 // top
    return Image.fromarray(gray.astype(np.uint8), "L").convert("RGB")


def _downscale(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    short = min(w, h)
    if short <= size:
        return img  # never upscale: the model's own preprocessing does that if it must
    scale = size / short
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    # reducing_gap: a cheap integer reduce first, then LANCZOS; visually the same, much faster on 12 MP HEIC
    return img.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)
