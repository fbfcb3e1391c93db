"""Reading and validating `config.toml`.

The file is optional: every key has an embedded default, so `photod` runs on an empty file. A wrong key or
value is refused at start with a message naming the key, the value and what is allowed, because a typo
that silently falls back to a default is how a root goes unwatched for months.

Each table of the file is a frozen section class (`[stage]` is `StageConfig`) whose fields declare every key's
default and allowed values once (see `setting`). The reader validates from those declarations, and code that
needs a default without a Config in hand reads it from the class, so no default is written twice.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from photod.errors import ConfigError

WATCH_MODES = ("auto", "inotify", "poll")
LOG_LEVELS = ("debug", "info", "warning", "error")
INDEX_KINDS = ("auto", "exact", "hnsw", "ivf")

# Folders that NAS boxes, cameras and operating systems fill with thumbnails and trash, never photos.
DEFAULT_EXCLUDE = [
    "@eaDir",
    "#recycle",
    "#snapshot",
    ".Trashes",
    ".Trash-*",
    "$RECYCLE.BIN",
    "System Volume Information",
    ".thumbnails",
    ".Spotlight-V100",
    ".fseventsd",
    ".DocumentRevisions-V100",
    "lost+found",
    ".*",
]

DEFAULT_INCLUDE = [
    "*.jpg",
    "*.jpeg",
    "*.jpe",
    "*.png",
    "*.webp",
    "*.heic",
    "*.heif",
    "*.hif",
    "*.avif",
    "*.jxl",
    "*.tif",
    "*.tiff",
    "*.bmp",
    "*.gif",
    # camera RAW (LibRaw)
    "*.dng",
    "*.cr2",
    "*.cr3",
    "*.crw",
    "*.nef",
    "*.nrw",
    "*.arw",
    "*.srf",
    "*.sr2",
    "*.raf",
    "*.orf",
    "*.rw2",
    "*.pef",
    "*.srw",
    "*.x3f",
    "*.3fr",
    "*.iiq",
    "*.erf",
    "*.mef",
    "*.mos",
    "*.mrw",
    "*.dcr",
    "*.kdc",
    # video (FFmpeg)
    "*.mp4",
    "*.mov",
    "*.m4v",
    "*.3gp",
    "*.3g2",
    "*.mkv",
    "*.avi",
    "*.webm",
    "*.mts",
    "*.m2ts",
]


def setting(
    default: Any, *, low: float | None = None, high: float | None = None, choices: tuple[str, ...] | None = None
) -> Any:
    """A key of config.toml: its default and the range or the choices its value must fall in.

    The default's type is the key's type: a float default takes any number, an int default only whole numbers.
    """
    return field(default=default, metadata={"low": low, "high": high, "choices": choices})


@dataclass(frozen=True)
class DaemonConfig:
    """[daemon]. Its `data_dir` key is resolved into `Config.data_dir`, which every part of photod needs."""

    log_level: str = setting("info", choices=LOG_LEVELS)
    rescan_hours: float = setting(6.0, low=0, high=24 * 365)
    deleted_grace_days: float = setting(30.0, low=0, high=3650)
    settle_seconds: float = setting(2.0, low=0, high=3600)


@dataclass(frozen=True)
class StageConfig:
    """[stage]: how photos are kept in the stage (photod.store.stage), and how a query photo is prepared to match."""

    size: int = setting(384, low=64, high=4096)  # shorter side in pixels: enough for 336-pixel models
    quality: int = setting(90, low=30, high=100)
    jpeg_draft: bool = setting(True)


@dataclass(frozen=True)
class VideoConfig:
    """[video]: which moments of a video are staged and searched (photod.ingest.video)."""

    enabled: bool = setting(True)
    max_frames: int = setting(12, low=1, high=200)  # per video, the first frame included
    probe_seconds: float = setting(2.0, low=0.2, high=600)  # looked at most this often for a change
    max_probes: int = setting(240, low=1, high=5000)  # moments looked at in all, however long the video
    change: float = setting(0.08, low=0.0, high=1.0)  # how different (0-1) a moment must be to be kept
    deadline_seconds: float = setting(120.0, low=5, high=3600)  # a decode still running then is abandoned


@dataclass(frozen=True)
class WorkersConfig:
    """[workers]: how much of the machine photod uses."""

    decode: int = setting(2, low=1, high=64)
    encode_threads: int = setting(2, low=1, high=256)
    batch_size: int = setting(16, low=1, high=1024)
    # Folder-reading threads (photod.roots.listing), whatever the core count. On network shares and spinning disks
    # a listing mostly waits, and even on a 2-core machine with a warm cache four beat two (0.12 s against
    # 0.14 s for 100,000 files).
    scan_threads: int = setting(4, low=1, high=64)


@dataclass(frozen=True)
class IndexConfig:
    """[index]: which FAISS index serves searches (photod.index.vectorindex)."""

    kind: str = setting("auto", choices=INDEX_KINDS)
    approximate_above: int = setting(200_000, low=0, high=10**10)


@dataclass(frozen=True)
class SignalsConfig:
    """[signals]: the search channels beside the image vector, each of which can be turned off."""

    ocr: bool = setting(True)  # read text in photos (needs the `ocr` extra; skipped with a note without it)
    ocr_threads: int = setting(1, low=1, high=64)  # ONNX Runtime threads per decode worker reading text
    places: bool = setting(True)  # name where a photo was taken, from its GPS, offline
    caption_meaning: bool = setting(True)  # find captions by meaning with the text tower, not only by words


@dataclass(frozen=True)
class RootConfig:
    """One [[roots]] entry: a folder to watch."""

    path: Path
    label: str = ""
    watch: str = setting("auto", choices=WATCH_MODES)
    poll_interval: float = setting(30.0, low=0.1, high=86400)
    include: tuple[str, ...] = tuple(DEFAULT_INCLUDE)
    exclude: tuple[str, ...] = tuple(DEFAULT_EXCLUDE)


@dataclass(frozen=True)
class Config:
    """The whole configuration: one section per table of config.toml, the roots, and where data lives."""

    data_dir: Path
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    stage: StageConfig = field(default_factory=StageConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    roots: tuple[RootConfig, ...] = ()
    source: Path | None = None


def default_config_path() -> Path:
    """`PHOTOD_CONFIG`, else the XDG config file, else `./config.toml` (the example in a checkout)."""
    env = os.environ.get("PHOTOD_CONFIG")
    if env:
        return Path(env).expanduser()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "photod" / "config.toml"
    if xdg.exists():
        return xdg
    return Path("config.toml")


def default_data_dir() -> Path:
    env = os.environ.get("PHOTOD_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "photod"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the configuration; a missing default file means all defaults."""
    explicit = path is not None or "PHOTOD_CONFIG" in os.environ
    cfg_path = Path(path).expanduser() if path is not None else default_config_path()
    if not cfg_path.exists():
        if explicit:
            raise ConfigError(
                f"config file {cfg_path} does not exist",
                "create it (copy config.toml from the photod source) or drop --config/PHOTOD_CONFIG",
            )
        return parse_config({}, None)
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{cfg_path} is not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path} is not valid TOML: {exc}", "fix the line it names") from None
    return parse_config(raw, cfg_path)


def parse_config(raw: dict[str, Any], source: Path | None) -> Config:
    where = f" in {source}" if source else ""
    _check_keys(raw, {"daemon", "stage", "workers", "index", "signals", "video", "roots"}, "", where)
    daemon = _table(raw, "daemon", where)
    return Config(
        daemon=_section(DaemonConfig, daemon, "daemon", where, also=("data_dir",)),
        stage=_section(StageConfig, _table(raw, "stage", where), "stage", where),
        workers=_section(WorkersConfig, _table(raw, "workers", where), "workers", where),
        index=_section(IndexConfig, _table(raw, "index", where), "index", where),
        signals=_section(SignalsConfig, _table(raw, "signals", where), "signals", where),
        video=_section(VideoConfig, _table(raw, "video", where), "video", where),
        data_dir=_data_dir(daemon, source, where),
        roots=_parse_roots(raw, source, where),
        source=source,
    )


def make_root(path: str | os.PathLike[str], **keys: Any) -> RootConfig:
    """Build a validated RootConfig from the keys of a [[roots]] table (used by `photod roots add`)."""
    return _parse_root({"path": str(path), **keys}, 0, None, "")


def _data_dir(daemon: dict, source: Path | None, where: str) -> Path:
    value = _get(daemon, "data_dir", str, "", "daemon.", where)
    if value and not os.environ.get("PHOTOD_DATA_DIR"):
        return _resolve(Path(value).expanduser(), source)
    return default_data_dir()


def _parse_roots(raw: dict, source: Path | None, where: str) -> tuple[RootConfig, ...]:
    roots_raw = raw.get("roots", [])
    if not isinstance(roots_raw, list):
        raise ConfigError(f"'roots'{where} must be an array of tables ([[roots]]), got {roots_raw!r}")
    roots = tuple(_parse_root(r, i, source, where) for i, r in enumerate(roots_raw))
    paths = [str(r.path) for r in roots]
    dup = {p for p in paths if paths.count(p) > 1}
    if dup:
        raise ConfigError(f"root {sorted(dup)[0]!r} is listed twice{where}", "keep one [[roots]] entry per folder")
    return roots


def _parse_root(raw: Any, i: int, source: Path | None, where: str) -> RootConfig:
    prefix = f"roots[{i}]."
    if not isinstance(raw, dict):
        raise ConfigError(f"roots[{i}]{where} must be a table with at least 'path', got {raw!r}")
    _check_keys(raw, {f.name for f in fields(RootConfig)} | {"extra_exclude"}, prefix, where)
    if "path" not in raw:
        raise ConfigError(f"roots[{i}]{where} has no 'path'", 'add path = "/mnt/photos" (the folder to watch)')
    path_value = _get(raw, "path", str, "", prefix, where)
    if not path_value.strip():
        raise ConfigError(f"{prefix}path{where} is empty", "give the folder to watch, e.g. /mnt/photos")
    path = _resolve(Path(path_value).expanduser(), source)
    exclude = _strings(raw, "exclude", DEFAULT_EXCLUDE, prefix, where)
    exclude += _strings(raw, "extra_exclude", [], prefix, where)
    return RootConfig(
        path=path,
        label=_get(raw, "label", str, "", prefix, where) or path.name or str(path),
        watch=_value(raw, _field(RootConfig, "watch"), prefix, where),
        poll_interval=_value(raw, _field(RootConfig, "poll_interval"), prefix, where),
        include=tuple(_strings(raw, "include", DEFAULT_INCLUDE, prefix, where)),
        exclude=tuple(exclude),
    )


def _section(cls: type, table: dict, name: str, where: str, also: tuple[str, ...] = ()) -> Any:
    """One table read into its section class, each key checked against the class's declaration."""
    prefix = f"{name}."
    _check_keys(table, {f.name for f in fields(cls)} | set(also), prefix, where)
    return cls(**{f.name: _value(table, f, prefix, where) for f in fields(cls) if f.name in table})


def _field(cls: type, name: str) -> Field:
    return next(f for f in fields(cls) if f.name == name)


def _value(table: dict, f: Field, prefix: str, where: str) -> Any:
    """The value of one declared key (see `setting`), or its default when the table leaves it out."""
    default: Any = f.default  # `setting` gives every key a default
    if f.metadata["choices"]:
        return _choice(table, f.name, f.metadata["choices"], default, prefix, where)
    if isinstance(default, (bool, str)):
        return _get(table, f.name, type(default), default, prefix, where)
    number = _number(
        table,
        f.name,
        default,
        f.metadata["low"],
        f.metadata["high"],
        prefix,
        where,
        integer=isinstance(default, int),
    )
    return type(default)(number)


def _resolve(path: Path, source: Path | None) -> Path:
    # Relative paths in a config file mean "relative to that file", as a person reading it would expect.
    if not path.is_absolute() and source is not None:
        path = source.parent / path
    return Path(os.path.abspath(path))


def _table(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}'{where} must be a table ([{key}]), got {value!r}")
    return value


def _check_keys(table: dict, allowed: set[str], prefix: str, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"unknown key '{prefix}{key}'{where}",
                f"allowed keys here: {', '.join(sorted(allowed))}",
            )


def _get(table: dict, key: str, typ: type, default: Any, prefix: str, where: str) -> Any:
    if key not in table:
        return default
    value = table[key]
    if typ is not bool and isinstance(value, bool) or not isinstance(value, typ):
        raise ConfigError(f"'{prefix}{key}'{where} must be a {typ.__name__}, got {value!r}")
    return value


def _choice(table: dict, key: str, allowed: tuple[str, ...], default: str, prefix: str, where: str) -> str:
    value = _get(table, key, str, default, prefix, where)
    if value.lower() not in allowed:
        raise ConfigError(f"'{prefix}{key}'{where} is {value!r}", f"allowed values: {', '.join(allowed)}")
    return value.lower()


def _number(
    table: dict, key: str, default: float, low: float, high: float, prefix: str, where: str, integer: bool = False
) -> float:
    if key not in table:
        return default
    value = table[key]
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"'{prefix}{key}'{where} must be {kind}, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"'{prefix}{key}'{where} is {value!r}", f"allowed range: {low:g} to {high:g}")
    return value


def _strings(table: dict, key: str, default: list[str], prefix: str, where: str) -> list[str]:
    if key not in table:
        return list(default)
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"'{prefix}{key}'{where} must be a list of glob strings, got {value!r}")
    return list(value)
