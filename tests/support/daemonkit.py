"""Running a real photod daemon in tests: in a thread (fast, inspectable) or as a subprocess (for kill -9)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

from PIL import Image

from photod.config import Config, load_config
from photod.service.daemon import Daemon
from photod.store.catalog import Catalog
from tests.support.polling import wait_for  # also imported from here by the daemon tests

REPO = Path(__file__).resolve().parent.parent.parent


def write_config(tmp_path: Path, roots: list[Path], ocr: bool = False, **daemon_keys) -> Path:
    """A config.toml for a test daemon. Text in photos is read only with `ocr`: most daemon tests are about
    files and drives, and reading text in hundreds of synthetic photos would only slow them down."""
    keys = {"settle_seconds": 0.3, "rescan_hours": 0, **daemon_keys}
    lines = ["[daemon]"] + [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in keys.items()]
    lines += ["[signals]", f"ocr = {str(ocr).lower()}"]
    for root in roots:
        lines += ["[[roots]]", f'path = "{root}"', "poll_interval = 0.5"]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class DaemonThread:
    """A real Daemon in a background thread; `stop()` asks it to finish as SIGTERM would."""

    def __init__(self, cfg: Config, mounts_path: str | None = None):
        self.daemon = Daemon(cfg, mounts_path=mounts_path)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None
        self.exit_code: int | None = None

    def _run(self) -> None:
        try:
            self.exit_code = self.daemon.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def __enter__(self) -> "DaemonThread":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.daemon.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "daemon did not stop within 60 s"
        if self.error:
            raise self.error


def counts(data_dir: Path) -> dict[str, int]:
    with Catalog.in_data_dir(data_dir) as cat:
        return cat.counts()


def settled(data_dir: Path, total: int) -> Callable[[], bool]:
    """Every one of `total` photos has left the `new` state."""

    def check() -> bool:
        c = counts(data_dir)
        return c["total"] == total and c["new"] == 0

    return check


def make_photos(folder: Path, n: int, prefix: str = "img", size: tuple[int, int] = (64, 48)) -> list[Path]:
    """Distinct small JPEGs (distinct content, so content hashes differ)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, (i * 53 + 17) % 256))
        img.putpixel((i % size[0], (i // size[0]) % size[1]), (255 - i % 256, 0, i % 256))
        p = folder / f"{prefix}_{i:04d}.jpg"
        img.save(p, quality=90)
        paths.append(p)
    return paths


def photod_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "photod", "--config", str(config), *args]


def start_daemon_process(config: Path, data_dir: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PHOTOD_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        photod_cmd(config, "run"), env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=REPO
    )


def starts_logged(log: Path) -> int:
    """How many daemons have said in `log` that they run (their signal handlers are in place by then)."""
    return log.read_text(errors="replace").count("photod running") if log.exists() else 0


def start_daemon_up(config: Path, data_dir: Path, log: Path, timeout: float = 60) -> subprocess.Popen:
    """Start a daemon process and return once it has said it runs. Counting the lines before the start
    matters: a daemon killed early on a busy machine may never have said so."""
    before = starts_logged(log)
    proc = start_daemon_process(config, data_dir, log)
    try:
        wait_for(lambda: starts_logged(log) > before, timeout, what="the daemon to start")
    except BaseException:
        proc.kill()
        proc.wait(timeout=30)
        raise
    return proc


def load(config: Path) -> Config:
    return load_config(config)
