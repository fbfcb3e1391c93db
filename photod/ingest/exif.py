"""Reading the EXIF that the catalog keeps: when, with what camera and lens, which way up, and where.

Camera EXIF is full of junk: dates of '0000:00:00 00:00:00', makes padded with NULs, GPS rationals with a
zero denominator, offsets pointing past the end of the file. None of that may cost a photo: a tag that
cannot be read is simply absent (None), and the reason goes to the debug log.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime
from typing import Any, Callable

from PIL import ExifTags, Image

log = logging.getLogger(__name__)

_T = ExifTags.Base
_GPS = ExifTags.GPS

# 'YYYY:MM:DD HH:MM:SS' as EXIF writes it; some writers use '-' in the date or 'T' between date and time.
_DATE = re.compile(r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_YEARS = (1900, 2100)


def read_exif(img: Image.Image) -> dict[str, Any]:
    """EXIF fields of `img` named as in PhotoMeta; each is None when absent or unreadable. Never raises."""
    out: dict[str, Any] = dict.fromkeys(
        ("taken_at", "camera_make", "camera_model", "lens", "orientation", "gps_lat", "gps_lon")
    )
    exif = _safe("EXIF block", lambda: img.getexif())
    if exif is None:
        return out
    sub = _safe("Exif IFD", lambda: exif.get_ifd(ExifTags.IFD.Exif)) or {}
    gps = _safe("GPS IFD", lambda: exif.get_ifd(ExifTags.IFD.GPSInfo)) or {}

    out["taken_at"] = _safe(
        "date", lambda: _first_date(sub.get(_T.DateTimeOriginal), sub.get(_T.DateTimeDigitized), exif.get(_T.DateTime))
    )
    out["camera_make"] = _safe("make", lambda: _text(exif.get(_T.Make)))
    out["camera_model"] = _safe("model", lambda: _text(exif.get(_T.Model)))
    out["lens"] = _safe("lens", lambda: _text(sub.get(_T.LensModel)))
    out["orientation"] = _safe("orientation", lambda: _orientation(exif.get(_T.Orientation)))
    out["gps_lat"] = _safe(
        "latitude", lambda: _coordinate(gps.get(_GPS.GPSLatitude), gps.get(_GPS.GPSLatitudeRef), "S", 90.0)
    )
    out["gps_lon"] = _safe(
        "longitude", lambda: _coordinate(gps.get(_GPS.GPSLongitude), gps.get(_GPS.GPSLongitudeRef), "W", 180.0)
    )
    return out


def parse_exif_date(value: Any) -> str | None:
    """An EXIF date as ISO 8601 'YYYY-MM-DDTHH:MM:SS', or None if it is malformed or absurd."""
    text = _text(value)
    if not text:
        return None
    m = _DATE.match(text)
    if not m:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in m.groups())
        when = datetime(year, month, day, hour, minute, second)
    except ValueError:  # month 13, day 00, '0000:00:00 00:00:00' and friends
        return None
    if not _YEARS[0] <= when.year <= _YEARS[1]:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _first_date(*values: Any) -> str | None:
    # A camera with a dead clock battery often writes a zero DateTimeOriginal but a sane DateTime, so a
    # bad value falls through to the next tag rather than ending the search.
    for value in values:
        iso = parse_exif_date(value)
        if iso:
            return iso
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", " ").strip()
    return text or None


def _orientation(value: Any) -> int | None:
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= 8 else None


def _coordinate(dms: Any, ref: Any, negative_ref: str, limit: float) -> float | None:
    """Degrees/minutes/seconds rationals plus an N/S or E/W reference -> signed decimal degrees."""
    if dms is None:
        return None
    parts = list(dms) if isinstance(dms, (tuple, list)) else [dms]
    if not 1 <= len(parts) <= 3:
        return None
    values = [float(p) for p in parts]  # IFDRational with a zero denominator becomes nan
    degrees = sum(v / 60.0**i for i, v in enumerate(values))
    if not math.isfinite(degrees) or not 0.0 <= degrees <= limit:
        return None
    ref_text = (_text(ref) or "").upper()[:1]
    if ref_text == negative_ref:
        degrees = -degrees
    return round(degrees, 7)


def _safe(what: str, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception as exc:  # a broken tag must never cost the photo; Pillow raises many kinds here
        log.debug("unreadable EXIF %s: %s: %s", what, type(exc).__name__, exc)
        return None
