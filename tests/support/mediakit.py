"""Real media files written with FFmpeg (PyAV) for the format tests and benchmarks: videos whose scenes are
known, and audio-only files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np


def write_video(
    path: Path,
    scenes: Sequence[tuple[tuple[int, int, int], float]],
    *,
    fps: int = 10,
    size: tuple[int, int] = (160, 120),
    gop: int = 10,
    codec: str = "mpeg4",
) -> Path:
    """A video of solid-colour scenes ((r, g, b), seconds) with a little moving texture, a keyframe every
    `gop` frames. Returns `path`."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 24, (h, w, 1), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        n = 0
        for color, seconds in scenes:
            for i in range(round(seconds * fps)):
                img = np.empty((h, w, 3), np.uint8)
                img[:] = color
                img = np.clip(img.astype(np.int16) + np.roll(noise, i, axis=1), 0, 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = n, Fraction(1, fps)
                n += 1
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """A QuickTime/MP4 file holding only an audio stream."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        samples = int(44100 * seconds)
        tone = (np.sin(np.arange(samples) / 20.0) * 0.2).astype(np.float32).reshape(1, -1)
        for start in range(0, samples, 1024):
            chunk = np.ascontiguousarray(tone[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
