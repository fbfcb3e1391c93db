"""Reading and validating `config.toml`.

The file is optional: every key has an embedded default, so `photod` runs on an empty file. A wrong key or
value is refused at start with a message naming the key, the value and what is allowed, because a typo
that silently falls back to a default is how a root goes unwatched for months.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photod.errors import ConfigError
from photod.listing import DEFAULT_THREADS

WATCH_MODES = ("auto", "inotify", "poll")
LOG_LEVELS = ("debug", "info", "warning", "error")

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
    "*.jpg", "*.jpeg", "*.jpe", "*.png", "*.webp", "*.heic", "*.heif", "*.hif",
    "*.tif", "*.tiff", "*.bmp", "*.gif",
]


@dataclass(frozen=True)
class RootConfig:
    path: Path
    label: str = ""
    watch: str = "auto"
    poll_interval: float = 30.0
    include: tuple[str, ...] = tuple(DEFAULT_INCLUDE)
    exclude: tuple[str, ...] = tuple(DEFAULT_EXCLUDE)


@dataclass(frozen=True)
class Config:
    data_dir: Path
    log_level: str = "info"
    rescan_hours: float = 6.0
    deleted_grace_days: float = 30.0
    settle_seconds: float = 2.0
    stage_size: int = 384
    stage_quality: int = 90
    jpeg_draft: bool = True
    decode_workers: int = 2
    encode_threads: int = 2
    scan_threads: int = DEFAULT_THREADS
    batch_size: int = 16
    index_kind: str = "auto"
    approximate_above: int = 200_000
    roots: tuple[RootConfig, ...] = ()
    source: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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


def load_config(path: str | os.PathLike | None = None) -> Config:
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
    _check_keys(raw, {"daemon", "stage", "workers", "index", "roots"}, "", where)
    daemon = _table(raw, "daemon", where)
    stage = _table(raw, "stage", where)
    workers = _table(raw, "workers", where)
    index = _table(raw, "index", where)
    _check_keys(daemon, {"data_dir", "log_level", "rescan_hours", "deleted_grace_days", "settle_seconds"},
                "daemon.", where)
    _check_keys(stage, {"size", "quality", "jpeg_draft"}, "stage.", where)
    _check_keys(workers, {"decode", "encode_threads", "batch_size", "scan_threads"}, "workers.", where)
    _check_keys(index, {"kind", "approximate_above"}, "index.", where)

    data_dir_value = _get(daemon, "data_dir", str, "", "daemon.", where)
    if os.environ.get("PHOTOD_DATA_DIR"):
        data_dir = default_data_dir()
    elif data_dir_value:
        data_dir = _resolve(Path(data_dir_value).expanduser(), source)
    else:
        data_dir = default_data_dir()

    roots_raw = raw.get("roots", [])
    if not isinstance(roots_raw, list):
        raise ConfigError(f"'roots'{where} must be an array of tables ([[roots]]), got {roots_raw!r}")
    roots = tuple(_parse_root(r, i, source, where) for i, r in enumerate(roots_raw))
    paths = [str(r.path) for r in roots]
    dup = {p for p in paths if paths.count(p) > 1}
    if dup:
        raise ConfigError(f"root {sorted(dup)[0]!r} is listed twice{where}", "keep one [[roots]] entry per folder")

    return Config(
        data_dir=data_dir,
        log_level=_choice(daemon, "log_level", LOG_LEVELS, "info", "daemon.", where),
        rescan_hours=_number(daemon, "rescan_hours", 6.0, 0.0, 24 * 365, "daemon.", where),
        deleted_grace_days=_number(daemon, "deleted_grace_days", 30.0, 0.0, 3650, "daemon.", where),
        settle_seconds=_number(daemon, "settle_seconds", 2.0, 0.0, 3600, "daemon.", where),
        stage_size=int(_number(stage, "size", 384, 64, 4096, "stage.", where, integer=True)),
        stage_quality=int(_number(stage, "quality", 90, 30, 100, "stage.", where, integer=True)),
        jpeg_draft=_get(stage, "jpeg_draft", bool, True, "stage.", where),
        decode_workers=int(_number(workers, "decode", 2, 1, 64, "workers.", where, integer=True)),
        encode_threads=int(_number(workers, "encode_threads", 2, 1, 256, "workers.", where, integer=True)),
        scan_threads=int(_number(workers, "scan_threads", DEFAULT_THREADS, 1, 64, "workers.", where,
                                 integer=True)),
        batch_size=int(_number(workers, "batch_size", 16, 1, 1024, "workers.", where, integer=True)),
        index_kind=_choice(index, "kind", ("auto", "exact", "hnsw", "ivf"), "auto", "index.", where),
        approximate_above=int(_number(index, "approximate_above", 200_000, 0, 10**10, "index.", where,
                                      integer=True)),
        roots=roots,
        source=source,
    )


def make_root(path: str | os.PathLike, label: str = "", watch: str = "auto", poll_interval: float = 30.0,
              include: list[str] | None = None, exclude: list[str] | None = None) -> RootConfig:
    """Build a validated RootConfig (used by `photod roots add`)."""
    raw: dict[str, Any] = {"path": str(path), "label": label, "watch": watch, "poll_interval": poll_interval}
    if include is not None:
        raw["include"] = include
    if exclude is not None:
        raw["exclude"] = exclude
    return _parse_root(raw, 0, None, "")


def _parse_root(raw: Any, i: int, source: Path | None, where: str) -> RootConfig:
    prefix = f"roots[{i}]."
    if not isinstance(raw, dict):
        raise ConfigError(f"roots[{i}]{where} must be a table with at least 'path', got {raw!r}")
    _check_keys(raw, {"path", "label", "watch", "poll_interval", "include", "exclude", "extra_exclude"},
                prefix, where)
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
        watch=_choice(raw, "watch", WATCH_MODES, "auto", prefix, where),
        poll_interval=_number(raw, "poll_interval", 30.0, 0.1, 86400, prefix, where),
        include=tuple(_strings(raw, "include", DEFAULT_INCLUDE, prefix, where)),
        exclude=tuple(exclude),
    )


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


def _number(table: dict, key: str, default: float, low: float, high: float, prefix: str, where: str,
            integer: bool = False) -> float:
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
