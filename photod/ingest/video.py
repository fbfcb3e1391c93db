"""Videos through FFmpeg's libraries (PyAV): what is cataloged (duration, resolution, creation time) and the
moments that are staged and searched like photos.

Moments are taken where the picture changes. The video is looked at every `probe_seconds` (fewer times for a
long one: at most `max_probes` in all), each time at the first keyframe in that stretch: photod seeks to the
keyframe before the moment, reads packets up to the next keyframe and decodes that one alone (the frames
between keyframes are never decoded), so the cost follows the number of looks, not the video's length or
frame rate. A look whose small
colour thumbnail differs from the last moment kept by more than `change` (mean absolute difference, 0-1) is
a new moment. The first frame is always one; when more than `max_frames` qualify, the first and those that
changed most are kept, in time order. Frames are scaled down by FFmpeg (swscale) before they reach Python,
so an 8K video costs little more memory than a photo.

Bad input (empty, truncated, audio only, a corrupt stream) raises DecodeError with a reason. The caller runs
the decode against a deadline (`deadline_seconds`): the loop here stops looking when it is reached and
keeps what it has, and a call that hangs inside FFmpeg is abandoned by photod.ingest.ingester.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from PIL import Image

from photod.config import StageConfig, VideoConfig
from photod.errors import DecodeError
from photod.ingest.decode import Decoded, from_image
from photod.store.catalog import PhotoMeta

log = logging.getLogger(__name__)

_THUMB = 16  # side of the small colour thumbnail moments are compared by (grey would miss a red-to-green cut)


@dataclass(frozen=True)
class Moment:
    time: float  # seconds from the start
    staged: Decoded  # the frame as the stage keeps it


@dataclass(frozen=True)
class DecodedVideo:
    meta: PhotoMeta
    moments: list[Moment]  # never empty; the first is the video's own stage entry (its poster)
    looked: int  # how many moments were looked at
    cut_short: bool  # the deadline ended the looking early


def decode_video(
    path: str,
    name: str,
    settings: VideoConfig = VideoConfig(),
    size: int = StageConfig.size,
    quality: int = StageConfig.quality,
) -> DecodedVideo:
    """Catalog data and sampled moments of the video at `path` (shown as `name` in errors)."""
    import av

    deadline = time.monotonic() + settings.deadline_seconds
    try:
        with av.open(path, options={"probesize": "8000000"}) as container:
            if not container.streams.video:
                raise DecodeError(f"{name}: no video stream (an audio-only file?)", "nothing in it to see")
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"  # frame threads would hold each lone keyframe back
            duration = _duration(container, stream)
            meta = _meta(container, stream, duration)
            looks = _probe_times(duration, settings)
            moments, looked, cut = _sample(container, stream, looks, settings, size, quality, deadline)
    except DecodeError:
        raise
    except av.FFmpegError as exc:
        raise DecodeError(
            f"{name}: not a video FFmpeg can read ({exc})", "the file may be incomplete (still copying) or damaged"
        ) from None
    except MemoryError:
        raise DecodeError(f"{name}: not enough memory to decode the video", "lower workers.decode") from None
    if not moments:
        raise DecodeError(f"{name}: no frame of the video could be decoded", "the video stream is damaged")
    first = moments[0].staged.meta
    width, height = meta.width or first.width, meta.height or first.height
    if (width > height) != (first.width > first.height):  # shown turned (a phone held upright): as shown
        width, height = height, width
    meta = PhotoMeta(**{**meta.__dict__, "width": width, "height": height})
    return DecodedVideo(meta, moments, looked, cut)


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _meta(container, stream, duration: float | None) -> PhotoMeta:
    ctx = stream.codec_context
    width, height = ctx.width or None, ctx.height or None
    tags = container.metadata | stream.metadata
    lat, lon = _location(tags)
    return PhotoMeta(
        width=width,
        height=height,
        format=f"video {ctx.name.upper()}",
        kind="video",
        taken_at=_created(tags),
        duration=duration,
        gps_lat=lat,
        gps_lon=lon,
        camera_make=tags.get("com.apple.quicktime.make") or tags.get("make"),
        camera_model=tags.get("com.apple.quicktime.model") or tags.get("model"),
    )


# ISO 6709 as phones write it: +52.4597+013.3220+051.178/ (latitude, longitude, optional altitude)
_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")


def _location(tags: dict) -> tuple[float | None, float | None]:
    """Where it was recorded (Apple's and Android's ISO 6709 tag), so the place is named as for photos."""
    m = _ISO6709.match(tags.get("com.apple.quicktime.location.ISO6709") or tags.get("location") or "")
    if not m:
        return None, None
    lat, lon = float(m[1]), float(m[2])
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else (None, None)


def _created(tags: dict) -> str | None:
    """When it was recorded, as the catalog stores taken_at (local time as the camera saw it): Apple's own
    tag holds the local time with its offset; the generic creation_time is UTC."""
    apple = tags.get("com.apple.quicktime.creationdate")
    for value, local in ((apple, True), (tags.get("creation_time"), False)):
        if not value:
            continue
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            continue
        if not local and when.tzinfo is not None:
            when = when.astimezone(timezone.utc)
        if when.year < 1971:
            continue  # a zeroed field: QuickTime's epoch is 1904
        return when.replace(tzinfo=None).isoformat(timespec="seconds")
    return None


def _probe_times(duration: float | None, settings: VideoConfig) -> list[float]:
    if not duration or duration <= 0:
        return [0.0]
    step = max(settings.probe_seconds, duration / settings.max_probes)
    n = max(1, min(settings.max_probes, int(duration / step) + 1))
    return [min(i * step, max(0.0, duration - 0.05)) for i in range(n)]


def _sample(
    container, stream, looks: list[float], settings: VideoConfig, size: int, quality: int, deadline: float
) -> tuple[list[Moment], int, bool]:
    # (time, how much it changed, staged): at most max_frames at any time, so memory stays that of a few
    # small JPEGs however long the video and however often it changes.
    kept: list[tuple[float, float, Decoded]] = []
    last_thumb: np.ndarray | None = None
    last_time = None
    looked = 0
    for i, t in enumerate(looks):
        if time.monotonic() > deadline:
            log.warning(
                "video %s: stopped looking at %.0f s of %.0f s (decode deadline); %d moments kept",
                container.name,
                t,
                looks[-1],
                len(kept),
            )
            return _moments(kept), looked, True
        found = _frame_at(container, stream, t, looks[i + 1] if i + 1 < len(looks) else float("inf"))
        looked += 1
        if found is None or found[0] == last_time:
            continue
        when, frame = found
        last_time = when
        img = _upright(frame, size)
        thumb = np.asarray(img.resize((_THUMB, _THUMB), Image.Resampling.BILINEAR), np.float32) / 255
        change = 1.0 if last_thumb is None else float(np.abs(thumb - last_thumb).mean())
        if last_thumb is None or change >= settings.change:
            kept.append((when, change, from_image(img, "frame", size, quality)))
            last_thumb = thumb
            if len(kept) > settings.max_frames:  # beyond the bound: the least change goes (never the first)
                kept.pop(min(range(1, len(kept)), key=lambda k: kept[k][1]))
    return _moments(kept), looked, False


def _frame_at(container, stream, t: float, until: float):
    """(time, frame) of the first keyframe from `t` seconds on and before `until`, decoded on its own; None
    when there is none.

    Only that packet is given to the decoder, then drained: a decoder that reorders frames (B-frames) would
    otherwise hold a keyframe back until two more had arrived, and the frames between keyframes are never
    decoded at all."""
    import av

    ctx = stream.codec_context
    try:
        if t > 0:
            container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
        for packet in container.demux(stream):
            if packet.pts is None or not packet.is_keyframe:
                continue
            when = float(packet.pts * packet.time_base)
            if when >= until:
                return None
            if when < t - 1e-3 and t > 0:
                continue
            frames = ctx.decode(packet) or ctx.decode(None)
            ctx.flush_buffers()
            return (when, frames[0]) if frames else None
    except (av.FFmpegError, EOFError) as exc:
        log.debug("video %s: no frame at %.1f s (%s)", container.name, t, exc)
        ctx.flush_buffers()
    return None


def _upright(frame, size: int) -> Image.Image:
    """The frame as RGB, scaled by FFmpeg so its shorter side is about `size`, turned as the video is shown."""
    w, h = frame.width, frame.height
    scale = min(1.0, size / max(1, min(w, h)))
    img = frame.to_image(width=max(2, round(w * scale)), height=max(2, round(h * scale)))
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    # The display matrix turns counter-clockwise by `rotation` degrees; PIL's rotate() turns the same way.
    return img.rotate(rotation, expand=True) if rotation else img


def _moments(kept: list[tuple[float, float, Decoded]]) -> list[Moment]:
    return [Moment(round(t, 3), staged) for t, _change, staged in kept]
