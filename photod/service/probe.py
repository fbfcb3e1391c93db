"""Native dependencies exercised in a child process, for `photod doctor`.

A native library that crashes while loading (onnxruntime reading an emulator's /proc/cpuinfo, a wheel built
for instructions this CPU lacks) takes the whole process down with a signal. The doctor must survive what it
diagnoses, so it runs these probes in a child (`python -m photod.service.probe NAME...`) and reads one JSON line
per probe: {"start": NAME} before it, then {"name": NAME, "ok": ..., "detail": ...}. A child that dies
leaves the name it had started, which the doctor reports with the signal, then starts a new child for the rest.

`python -m photod.service.probe --rate BUNDLE_DIR THREADS BATCH SECONDS` times the bundle's image encoder
instead, printing one JSON line (load_s, images, seconds, rate, batch).
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

# What each probe proves beyond "it imports": the code path photod uses (a JPEG encoded and decoded, an
# LMDB written and read back, a FAISS search, a GEOS operation, a folder listed by the C walker).


def _numpy() -> str:
    import numpy as np

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert float((a @ a.T)[2, 2]) == 366.0
    return np.__version__


def _pil() -> str:
    import io

    import PIL
    from PIL import Image, features

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 40, 10)).save(buf, "JPEG")
    with Image.open(io.BytesIO(buf.getvalue())) as img:
        img.load()
    codecs = [name for name in ("jpg", "webp", "libtiff") if features.check(name)]
    return f"{PIL.__version__}, codecs: {' '.join(codecs)}"


def _pillow_heif() -> str:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return pillow_heif.__version__


def _lmdb() -> str:
    import lmdb

    with tempfile.TemporaryDirectory() as d:
        env = lmdb.open(d, map_size=1 << 20)
        with env.begin(write=True) as txn:
            txn.put(b"k", b"v")
        with env.begin() as txn:
            assert txn.get(b"k") == b"v"
        env.close()
    return lmdb.__version__


def _faiss() -> str:
    import faiss
    import numpy as np

    index = faiss.IndexFlatIP(8)
    index.add(np.eye(8, dtype=np.float32))
    _, ids = index.search(np.eye(8, dtype=np.float32)[:1], 1)
    assert int(ids[0, 0]) == 0
    # which instruction sets the loaded build was compiled for ("DD": it picks among them at run time)
    options = faiss.get_compile_options() if hasattr(faiss, "get_compile_options") else ""
    return f"{faiss.__version__}, built with {options.strip() or 'no options reported'}"


def _onnxruntime() -> str:
    import onnxruntime as ort

    return f"{ort.__version__}, providers: {', '.join(ort.get_available_providers())}"


def _shapely() -> str:
    import shapely
    from shapely.geometry import Point

    assert Point(0, 0).buffer(1).contains(Point(0.5, 0))
    return shapely.__version__


def _watchdog() -> str:
    from watchdog.observers import Observer  # picks inotify, or polling where it is missing

    # watchdog types Observer as a factory protocol; it is the observer class chosen for this system
    return f"{_version('watchdog')}, {Observer.__name__}"  # type: ignore[attr-defined]


def _textual() -> str:
    import textual

    return getattr(textual, "__version__", "present")


def _rawpy() -> str:
    import rawpy

    return f"{rawpy.__version__} (LibRaw {'.'.join(map(str, rawpy.libraw_version))})"


def _av() -> str:
    import av

    missing = [name for name in ("h264", "hevc") if name not in av.codecs_available]
    assert not missing, f"FFmpeg here cannot decode {', '.join(missing)}"
    return f"{av.__version__} (FFmpeg {av.ffmpeg_version_info})"


def _rapidocr() -> str:
    import rapidocr  # noqa: F401 - brings OpenCV and onnxruntime

    return _version("rapidocr")


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "present"


def _walker() -> str:
    from photod.roots.listing import BACKEND, list_tree

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "a").mkdir()
        (Path(d) / "a" / "p.jpg").write_bytes(b"x")
        listed = list(list_tree(d, lambda _: True))
    assert any("p.jpg" in folder.file_names() for folder in listed), "the walker missed a file it was shown"
    return BACKEND


PROBES: dict[str, Callable[[], str]] = {
    "numpy": _numpy,
    "PIL": _pil,
    "pillow_heif": _pillow_heif,
    "lmdb": _lmdb,
    "faiss": _faiss,
    "onnxruntime": _onnxruntime,
    "shapely": _shapely,
    "watchdog": _watchdog,
    "textual": _textual,
    "rapidocr": _rapidocr,
    "walker": _walker,
    "rawpy": _rawpy,
    "av": _av,
}


def run_probe(name: str) -> dict:
    """One probe's result; a name without a probe of its own is imported (the doctor's tests use that)."""
    probe = PROBES.get(name) or (lambda: getattr(importlib.import_module(name), "__version__", "present"))
    try:
        return {"name": name, "ok": True, "detail": str(probe())}
    except Exception as exc:  # noqa: BLE001 - a broken install can raise anything
        return {"name": name, "ok": False, "detail": f"{type(exc).__name__}: {exc}"}


def time_encoder(bundle_dir: str, threads: int, batch: int, seconds: float) -> dict:
    """The image encoder's load time and images/s at `batch`, timed for about `seconds` after a warm-up."""
    import numpy as np

    from photod.model.bundle import Bundle
    from photod.model.encoder import ImageEncoder

    t0 = time.perf_counter()
    encoder = ImageEncoder(Bundle.load(bundle_dir), threads=threads)
    load_s = time.perf_counter() - t0
    pixels = np.random.default_rng(0).standard_normal((batch, 3, encoder.size, encoder.size)).astype(np.float32)
    encoder.encode_array(pixels)  # the first run allocates the arena; a daemon pays that once
    done, t0 = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - t0 < seconds:
        encoder.encode_array(pixels)
        done += batch
    elapsed = time.perf_counter() - t0
    return {"load_s": load_s, "images": done, "seconds": elapsed, "rate": done / elapsed, "batch": batch}


def _emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--rate"]:
        bundle_dir, threads, batch, seconds = argv[1], int(argv[2]), int(argv[3]), float(argv[4])
        _emit(time_encoder(bundle_dir, threads, batch, seconds))
        return 0
    for name in argv:
        _emit({"start": name})
        _emit(run_probe(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
