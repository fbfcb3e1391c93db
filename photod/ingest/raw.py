"""Camera RAW files through LibRaw (rawpy): staged from the embedded JPEG preview when it is at least the
stage size, which every modern camera writes at full resolution and which decodes in milliseconds; else from
a half-size demosaic, four times fewer pixels than a full one and still larger than any stage size.

Orientation: LibRaw reports the camera's (sizes.flip); the preview is stored as the sensor saw it, so it is
turned here unless it carries an orientation of its own. postprocess() turns its output itself.
"""

from __future__ import annotations

import logging
from io import BytesIO

from PIL import Image

from photod.errors import DecodeError
from photod.ingest import decode as stills

log = logging.getLogger(__name__)

# LibRaw's flip -> the EXIF orientation that means the same turn.
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}


def decode_raw(data: bytes, name: str, size: int, quality: int, text_side: int | None = None) -> stills.Decoded:
    """A RAW file as the stage keeps it. Raises DecodeError naming `name` for a file LibRaw cannot read."""
    import rawpy

    try:
        with rawpy.imread(BytesIO(data)) as raw:
            orientation = _FLIP_TO_ORIENTATION.get(raw.sizes.flip, 1)
            preview = _preview(raw, name, size, orientation)
            img = preview if preview is not None else _demosaic(raw)
            width, height = raw.sizes.width, raw.sizes.height
    except DecodeError:
        raise
    except (rawpy.LibRawError, ValueError, OSError) as exc:
        raise DecodeError(
            f"{name}: not a RAW file LibRaw can read ({type(exc).__name__}: {exc})",
            "the file may be damaged, or from a camera newer than this LibRaw",
        ) from None
    except MemoryError:
        raise DecodeError(f"{name}: not enough memory to decode the RAW file", "lower workers.decode") from None
    if orientation in (6, 8):
        width, height = height, width
    decoded = stills.from_image(img, name, size, quality, text_side)
    meta = stills.PhotoMeta(
        **{
            **decoded.meta.__dict__,
            **_tiff_exif(data),
            "width": width,
            "height": height,
            "format": "RAW " + name.rsplit(".", 1)[-1].upper(),
        }
    )
    return stills.Decoded(decoded.jpeg, meta, decoded.text_image)


def _preview(raw, name: str, size: int, orientation: int) -> Image.Image | None:
    """The embedded preview, upright, if it is a JPEG (or bitmap) whose shorter side is at least `size`."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    except rawpy.LibRawError as exc:
        log.debug("%s: preview unreadable (%s); demosaicing instead", name, exc)
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            img: Image.Image = Image.open(BytesIO(thumb.data))
            img.load()
        except OSError as exc:
            log.debug("%s: preview JPEG broken (%s); demosaicing instead", name, exc)
            return None
        own = img.getexif().get(0x0112, 1)
    else:
        img, own = Image.fromarray(thumb.data), 1
    if min(img.size) < size:
        return None
    return _turn(img, own if own != 1 else orientation)


def _turn(img: Image.Image, orientation: int) -> Image.Image:
    method = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}
    return img.transpose(method[orientation]) if orientation in method else img


def _demosaic(raw) -> Image.Image:
    rgb = raw.postprocess(half_size=True, use_camera_wb=True, no_auto_bright=False, output_bps=8)
    return Image.fromarray(rgb)


def _tiff_exif(data: bytes) -> dict:
    """Date, camera, lens and GPS from a TIFF-based RAW's EXIF (most are), read by Pillow without decoding
    pixels; nothing when Pillow cannot parse the container (CR3, RAF...)."""
    try:
        with Image.open(BytesIO(data), formats=("TIFF",)) as img:
            exif = stills.read_exif(img)
    except Exception:  # noqa: BLE001 - metadata is a bonus; the pixels came from LibRaw
        return {}
    exif.pop("orientation", None)
    return {k: v for k, v in exif.items() if v is not None}
