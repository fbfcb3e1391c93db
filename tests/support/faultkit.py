"""Tools for photod's fault and bad-input suites: seeds, trial counts, figures, a consistency check of a data
dir, a bad-input corpus, tree snapshots, peak memory and socket inspection of a live daemon process.

Scaling: the short run (CI) uses the defaults below; the long run sets
    PHOTOD_FAULT_TRIALS=N     kill -9 trials per scenario (default 3)
    PHOTOD_FAULT_SCALE=K      multiplies photo counts and tree sizes (default 1)
    PHOTOD_FAULT_SEED=S       replays one seed (every randomized test prints the seed it used)
    PHOTOD_FAULT_REPORT=FILE  figures are accumulated in this JSON file; `python -m tests.support.faultkit FILE`
                              prints them as a markdown table.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import stat
import struct
import subprocess
import sys
import zlib
from io import BytesIO
from pathlib import Path
from typing import Iterator

from PIL import Image

REPO = Path(__file__).resolve().parent.parent.parent

# ---- scaling, seeds, figures ---------------------------------------------------------------------------


def trials(default: int = 3) -> int:
    """Kill -9 trials per scenario: PHOTOD_FAULT_TRIALS, else `default` (the short CI run)."""
    return max(1, int(os.environ.get("PHOTOD_FAULT_TRIALS", default)))


def scale(n: int) -> int:
    """A size `n` of the short run, times PHOTOD_FAULT_SCALE."""
    return int(n * float(os.environ.get("PHOTOD_FAULT_SCALE", "1")))


def long_run() -> bool:
    return int(os.environ.get("PHOTOD_FAULT_TRIALS", "0")) > 3 or float(os.environ.get("PHOTOD_FAULT_SCALE", "1")) > 1


def seeded(what: str) -> random.Random:
    """A Random for one randomized test, printing its seed so a failure can be replayed."""
    seed = int(os.environ.get("PHOTOD_FAULT_SEED") or random.randrange(1 << 30))
    print(f"\n{what}: seed {seed} (replay with PHOTOD_FAULT_SEED={seed})")
    return random.Random(seed)


FIGURES: dict[str, float] = {}


def record(**figures: float) -> None:
    """Add counts (summed) and peaks (keys starting with 'peak_': maximum) to the run's figures."""
    path = os.environ.get("PHOTOD_FAULT_REPORT")
    stored = json.loads(Path(path).read_text()) if path and Path(path).exists() else dict(FIGURES)
    for key, value in figures.items():
        for table in (FIGURES, stored):
            if key.startswith("peak_"):
                table[key] = max(table.get(key, 0), value)
            else:
                table[key] = table.get(key, 0) + value
    if path:
        Path(path).write_text(json.dumps(stored, indent=1))


LABELS = {
    "trials": "kill -9 trials run",
    "kills": "faults injected (kill -9)",
    "disk_full": "faults injected (disk full)",
    "other_faults": "faults injected (vanished, hung, remounted, corrupted)",
    "bad_files": "bad files tried",
    "photos": "photos ingested across trials",
    "lost": "photos lost",
    "duplicates": "duplicate photos or vectors",
    "peak_rss_mib": "peak daemon memory (MiB, VmHWM)",
    "peak_scan_rss_mib": "peak memory of a scan (MiB)",
    "peak_tree_entries": "largest tree scanned (entries)",
    "seconds": "wall time (s)",
}


def markdown(figures: dict[str, float]) -> str:
    rows = ["| figure | value |", "|---|---|"]
    for key, label in LABELS.items():
        if key in figures:
            value = figures[key]
            rows.append(f"| {label} | {value:.0f} |" if float(value).is_integer() else f"| {label} | {value:.1f} |")
    return "\n".join(rows)


# ---- config and processes ------------------------------------------------------------------------------


def write_config(folder: Path, roots: list[Path], *, poll_interval: float = 0.5, **tables: dict) -> Path:
    """A config.toml with the given roots and tables ({"daemon": {...}, "workers": {...}}). Text in photos
    is not read unless a `signals` table asks for it: the fault runs are about files, drives and kills, and
    tests/test_ocr.py and the signal tests read text."""
    tables = {"daemon": {"settle_seconds": 0.3, "rescan_hours": 0}, "signals": {"ocr": False}, **tables}
    lines: list[str] = []
    for name, keys in tables.items():
        lines.append(f"[{name}]")
        lines += [
            f"{k} = {json.dumps(v) if isinstance(v, str) else repr(v).lower() if isinstance(v, bool) else v}"
            for k, v in keys.items()
        ]
    for root in roots:
        lines += ["[[roots]]", f"path = {json.dumps(str(root))}", f"poll_interval = {poll_interval}"]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def photod(config: Path, data_dir: Path, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run a photod command to completion."""
    env = {**os.environ, "PHOTOD_DATA_DIR": str(data_dir), **kw.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "photod", "--config", str(config), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM), in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


# ---- the consistency every fault must leave --------------------------------------------------------------


def check_data_dir(data_dir: Path, *, settled: bool = False) -> dict[str, int]:
    """Catalog, stage and index agree. Returns counts for the figures.

    Always: no row claims a missing stage entry; an orphan stage entry belongs only to a row still `new`
    (repaired at the next start); no vector belongs to a photo that claims no stage entry; no two live
    rows share a root and path. With `settled` (after a clean run to completion): stage keys == rows
    claiming staged, and the saved index of the active model holds exactly its vectors, each once.
    """
    import numpy as np

    from photod.index.vectorindex import VectorIndex
    from photod.model import bundle as bundles
    from photod.model import registry
    from photod.store import vectors
    from photod.store.catalog import Catalog
    from photod.store.stage import Stage

    with Catalog.in_data_dir(data_dir) as cat, Stage(data_dir, readonly=True) as stage:
        keys = stage.keys()
        claimed = cat.staged_ids()
        assert claimed <= keys, f"rows claim missing stage entries: {sorted(claimed - keys)[:5]}"
        new_ids = {r[0] for r in cat.conn.execute("SELECT id FROM photos WHERE state = 'new'")}
        assert keys - claimed <= new_ids, f"stage entries owned by nobody: {sorted(keys - claimed - new_ids)[:5]}"
        orphans = cat.scalar(
            "SELECT count(*) FROM vectors v JOIN photos p ON p.id = v.photo_id WHERE p.staged_at IS NULL"
        )
        assert orphans == 0, f"{orphans} vectors belong to photos that claim no stage entry"
        twice = cat.scalar(
            "SELECT count(*) FROM (SELECT root_id, rel_path FROM photos GROUP BY 1, 2 HAVING count(*) > 1)"
        )
        assert twice == 0
        if settled:
            assert keys == claimed, f"stage {len(keys)} entries, rows claiming one {len(claimed)}"
            name = registry.active_name(data_dir)
            if name:
                model_id = bundles.Bundle.load(registry.models_dir(data_dir) / name).image_id
                want = np.sort(vectors.indexed_ids(cat, model_id))
                index = VectorIndex(data_dir, model_id)
                loaded = index._read(warn=True)
                assert loaded is not None, f"the saved index of {name} does not check out"
                faiss_index, meta = loaded
                from photod.index.vectorindex import _stored_ids

                ids = _stored_ids(faiss_index, meta.kind)
                live = np.sort(ids[ids >= 0])
                assert np.unique(live).size == live.size, "an id is in the saved index twice"
                assert np.array_equal(live, want), (
                    f"saved index holds {live.size} ids, the catalog {want.size} vectors of {name}"
                )
        return cat.counts()


# ---- the bad-input corpus ------------------------------------------------------------------------------


def jpeg_bytes(size: tuple[int, int] = (64, 48), color=(200, 30, 60), mode: str = "RGB", **save) -> bytes:
    buf = BytesIO()
    Image.new(mode, size, color if mode == "RGB" else None).save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def png_bytes(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    buf = BytesIO()
    fill = {"RGB": (10, 200, 90), "I;16": 40000, "RGBA": (1, 2, 3, 100)}.get(mode, 0)
    Image.new(mode, size, fill).save(buf, "PNG")
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb by header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG with its SOF0 frame header rewritten to claim width x height."""
    data = bytearray(jpeg_bytes())
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_bomb(side: int = 12000) -> bytes:
    """A real, valid PNG of side x side black pixels: a few hundred KB that decode to side^2 * 3 bytes."""
    raw = zlib.compressobj(9)
    row = b"\0" + b"\0" * side * 3
    body = b"".join(raw.compress(row) for _ in range(side)) + raw.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def bit_flipped(data: bytes, rng: random.Random, flips: int = 40) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        i = rng.randrange(2, len(out))  # keep the magic so the decoder is really exercised
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def exif_absurd() -> bytes:
    """A JPEG whose EXIF has a date in year 0000/month 13, GPS latitude 500 degrees, and garbage make."""
    img = Image.new("RGB", (40, 30), (5, 100, 200))
    exif = Image.Exif()
    exif[0x010F] = "\udcff".encode("utf-8", "surrogateescape").decode("latin-1") * 3  # Make
    exif[0x0132] = "0000:13:45 99:99:99"  # DateTime
    gps = {1: "N", 2: (500.0, 99.0, 12345.0), 3: "Q", 4: (999.0, 0.0, 0.0), 6: 4294967295.0}
    exif[0x8825] = gps
    exif_ifd = {0x9003: "99999:99:99 25:61:61"}  # DateTimeOriginal
    exif[0x8769] = exif_ifd
    buf = BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def heic_bytes() -> bytes | None:
    try:
        import pillow_heif  # noqa: F401 - registers the HEIF plugin
    except ImportError:
        return None
    buf = BytesIO()
    try:
        Image.new("RGB", (64, 48), (30, 60, 90)).save(buf, "HEIF")
    except (KeyError, OSError, ValueError):
        return None
    return buf.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("P", (40, 30), i * 40) for i in range(5)]
    buf = BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buf.getvalue()


def write_bad_corpus(root: Path, rng: random.Random, samples: Path | None = None) -> dict[str, str]:
    """Write the bad-input corpus into `root`. Returns {rel_path: expectation} where expectation is
    'failed' (a photo row that must fail with a message naming it), 'staged' (odd but valid: must stage)
    or 'absent' (not a regular photo file: must not be catalogued at all)."""
    root.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str] = {}

    def put(rel: str, data: bytes, what: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expect[rel] = what

    good_jpeg = jpeg_bytes((320, 240))
    good_png = png_bytes((120, 90))
    put("bad/zero.jpg", b"", "failed")
    put("bad/text.jpg", b"shopping list: milk, eggs\n" * 20, "failed")
    put("bad/html.png", b"<html><body>404 Not Found</body></html>", "failed")
    put("bad/truncated_header.jpg", good_jpeg[:30], "failed")
    put("bad/truncated_png.png", good_png[:60], "failed")
    put("bad/claims_100000x100000.png", png_claiming(100_000, 100_000), "failed")
    put("bad/claims_65000x65000.jpg", jpeg_claiming(65_000, 65_000), "failed")
    put("bad/bomb_12000x12000.png", png_bomb(12_000), "failed")
    put("bad/random_bytes.jpg", bytes(rng.randrange(256) for _ in range(4096)), "failed")
    put("bad/jpeg_magic_only.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 100, "failed")
    for i in range(3):
        # A bit-flipped JPEG may still decode (JPEG is forgiving) or fail: either is fine, as long as it
        # ends in one of the two with a message. Truncated-in-the-middle ones likewise.
        put(f"flaky/flipped_{i}.jpg", bit_flipped(good_jpeg, rng), "either")
        put(f"flaky/flipped_{i}.png", bit_flipped(good_png, rng, 8), "either")
    put("flaky/truncated_half.jpg", good_jpeg[: len(good_jpeg) // 2], "either")
    heic = heic_bytes()
    if heic:
        put("bad/truncated.heic", heic[: len(heic) // 3], "failed")
        put("flaky/flipped.heic", bit_flipped(heic, rng, 10), "either")
        put("odd/ok.heic", heic, "staged")
    put("odd/cmyk.jpg", jpeg_bytes((80, 60), mode="CMYK", color=None), "staged")
    put("odd/sixteen_bit.png", png_bytes((50, 40), "I;16"), "staged")
    put("odd/alpha.png", png_bytes((50, 40), "RGBA"), "staged")
    put("odd/animated.gif", animated_gif(), "staged")
    put("odd/absurd_exif.jpg", exif_absurd(), "staged")
    put("odd/progressive.jpg", jpeg_bytes((300, 200), progressive=True), "staged")
    # Names: invalid UTF-8 bytes, and a path near PATH_MAX.
    bad_name = os.fsdecode(b"odd/caf\xe9_\xff.jpg")
    (root / "odd").mkdir(exist_ok=True)
    with open(os.fsencode(root) + b"/odd/caf\xe9_\xff.jpg", "wb") as f:
        f.write(jpeg_bytes((60, 40), color=(1, 2, 250)))
    expect[bad_name] = "staged"
    deep = "/".join(["d" * 200] * 18)  # ~3600 bytes of folders: beyond most tools' comfort, under PATH_MAX
    long_rel = f"long/{deep}/{'n' * 200}.jpg"
    try:
        put(long_rel, jpeg_bytes((60, 40), color=(9, 9, 9)), "staged")
    except OSError:
        pass
    # Not regular files: never opened, never catalogued.
    (root / "special").mkdir(exist_ok=True)
    os.symlink("loop_b.jpg", root / "special/loop_a.jpg")
    os.symlink("loop_a.jpg", root / "special/loop_b.jpg")
    os.symlink("..", root / "special/parent_loop")  # a directory loop
    os.symlink("/etc/passwd", root / "special/passwd.jpg")
    expect.update({"special/loop_a.jpg": "absent", "special/loop_b.jpg": "absent", "special/passwd.jpg": "absent"})
    os.mkfifo(root / "special/fifo.jpg")
    expect["special/fifo.jpg"] = "absent"
    try:
        os.mknod(root / "special/zero.jpg", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
        expect["special/zero.jpg"] = "absent"
    except (PermissionError, OSError):
        pass
    sock_path = root / "special/socket.jpg"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(str(sock_path))
        expect["special/socket.jpg"] = "absent"
    except OSError:
        pass
    finally:
        s.close()
    if samples is not None and samples.is_dir():
        for path in sorted(samples.rglob("*")):
            if path.is_file() and path.suffix.lower() in (".jpg", ".jpeg", ".png", ".heic", ".tif", ".tiff"):
                put(f"samples/{path.relative_to(samples)}", path.read_bytes(), "either")
    return expect


# ---- trees ---------------------------------------------------------------------------------------------


def snapshot_tree(root: Path) -> dict[bytes, tuple]:
    """(type, size, mtime_ns, mode) of every entry under `root`, symlinks not followed; names as bytes."""
    out: dict[bytes, tuple] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[p[len(base) :]] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, st.st_mode)
    st = os.lstat(base)
    out[b"."] = (stat.S_IFMT(st.st_mode), st.st_mtime_ns, st.st_mode)
    return out


def wide_tree(root: Path, entries: int, per_dir: int = 1000) -> int:
    """`entries` empty-ish files (a few bytes each, named .jpg) in folders of `per_dir`. Returns the count."""
    made = 0
    d = 0
    while made < entries:
        folder = root / f"f{d:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        n = min(per_dir, entries - made)
        for i in range(n):
            fd = os.open(folder / f"p{i:05d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)
        made += n
        d += 1
    return made


# ---- sockets of a process ------------------------------------------------------------------------------


def socket_inodes(pid: int) -> set[int]:
    """Inodes of every socket the process has open."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(int(m.group(1)))
    return inodes


def inet_sockets(pid: int) -> list[tuple[str, str, str]]:
    """(table, local address, state) of every TCP/UDP/raw socket among the process's open sockets."""
    mine = socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if len(cols) > 9 and int(cols[9]) in mine:
                found.append((table, cols[1], cols[3]))
    return found


def iter_photo_rows(data_dir: Path) -> Iterator[dict]:
    from photod.store.catalog import Catalog

    with Catalog.in_data_dir(data_dir) as cat:
        yield from cat.query("SELECT p.*, r.path AS root_path FROM photos p JOIN roots r ON r.id = p.root_id")


if __name__ == "__main__":
    figures = json.loads(Path(sys.argv[1]).read_text())
    print(markdown(figures))


# ---- small real models ---------------------------------------------------------------------------------


def install_tiny(data_dir: Path, name: str, seed: int = 0, activate: bool = True):
    """Install a tiny real ONNX bundle (tests.support.modelkit.tiny_bundle) into a data dir, optionally active."""
    from photod.model import registry
    from tests.support.modelkit import tiny_bundle

    src = Path(data_dir).parent / f"src-{name}"
    tiny_bundle(src, name=name, seed=seed)
    installed = registry.install_bundle(src, data_dir, name)
    if activate:
        registry.use_bundle(data_dir, name)
    return installed


def indexed_for_active(data_dir: Path, n: int) -> bool:
    """All `n` photos indexed for the active model, and search serves that model."""
    from photod.model import registry
    from photod.store.catalog import Catalog

    if not (Path(data_dir) / "catalog.db").exists():
        return False
    with Catalog.in_data_dir(data_dir) as cat:
        c = cat.counts()
    return (
        c["indexed"] == n
        and c["total"] == n
        and registry.serving_name(data_dir) == registry.active_name(data_dir)
        and (
            registry.serving_path(data_dir).exists()
            and registry.serving_path(data_dir).read_text().strip() == registry.active_name(data_dir)
        )
    )


def counts_of(data_dir: Path) -> dict[str, int]:
    """Catalog counts by state (all zero before the catalog exists)."""
    from photod.store.catalog import STATES, Catalog

    if not (Path(data_dir) / "catalog.db").exists():
        return {s: 0 for s in (*STATES, "total")}
    with Catalog.in_data_dir(data_dir) as cat:
        return cat.counts()


def distinct_photos(
    folder: Path, n: int, size: tuple[int, int] = (32, 24), prefix: str = "p", start: int = 0
) -> list[Path]:
    """`n` small JPEGs whose bytes all differ, numbered from `start` (the number is painted into the pixels,
    so calls with disjoint ranges never make two equal files)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        img = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, (i * 53 + 17) % 256))
        for bit in range(24):  # one 2x2 black or white block per bit of i
            x, y = (bit % 8) * 4 % size[0], (bit // 8) * 4 % size[1]
            v = 255 if (i >> bit) & 1 else 0
            for dx in (0, 1):
                for dy in (0, 1):
                    img.putpixel((x + dx, y + dy), (v, v, v))
        p = folder / f"{prefix}_{i:06d}.jpg"
        img.save(p, quality=95)
        out.append(p)
    return out
