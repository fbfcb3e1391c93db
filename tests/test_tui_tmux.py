"""The real `photod tui` in a real terminal (tmux): keys in, screen text out.

tmux runs on its own socket, so the test never touches a person's tmux sessions, and the server it starts
is the one it stops.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.polling import wait_for
from tests.support.tuikit import REPO_ROOT, build_library, write_config

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux) - it runs the real TUI"
)


def tui_command(config: Path) -> str:
    """`photod --config CFG tui` once the CLI has the subcommand; the same entry point called directly until then."""
    from photod.cli import COMMANDS

    if "tui" in COMMANDS:
        args = [sys.executable, "-m", "photod", "--config", str(config), "tui"]
    else:
        code = (
            "from photod.config import load_config; from photod.tui.app import run_tui; "
            f"raise SystemExit(run_tui(load_config({str(config)!r})))"
        )
        args = [sys.executable, "-c", code]
    return shlex.join(args)


class Tmux:
    def __init__(self, socket: str):
        self.socket = socket

    def __call__(self, *args: str) -> str:
        # -u and a UTF-8 locale: without them tmux drops the Chinese characters it is asked to type.
        env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        out = subprocess.run(
            ["tmux", "-u", "-L", self.socket, *args], capture_output=True, text=True, timeout=30, env=env
        )
        if out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "tui")

    def wait_for_text(self, text: str, timeout: float = 30.0) -> str:
        """The screen, once `text` is on it."""
        return wait_for(
            lambda: screen if text in (screen := self.screen()) else "",
            timeout,
            interval=0.2,
            what=lambda: f"{text!r} on the screen; last screen:\n{self.screen()}",
        )


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(f"photod-test-{os.getpid()}-{tmp_path.name}")
    yield t
    subprocess.run(["tmux", "-L", t.socket, "kill-server"], capture_output=True, timeout=30)


def test_real_tui_in_tmux_finds_a_photo(tmux, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    build_library(data_dir)
    config = write_config(tmp_path / "config.toml", data_dir)
    env = {
        "PHOTOD_TUI_IMAGES": "halfcell",
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(REPO_ROOT),
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    tmux(
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "110",
        "-y",
        "34",
        f"cd {shlex.quote(str(REPO_ROOT))} && env {exports} {tui_command(config)}; sleep 60",
    )
    tmux.wait_for_text("newest first")
    tmux("send-keys", "-t", "tui", "-l", "sunset")
    screen = tmux.wait_for_text("1 photo ·")
    assert "sunset.jpg" in screen and "cat_sofa.jpg" not in screen
    # ctrl+u, then Chinese as an input method commits it, in one write: the field must clear before the
    # characters land, not after (keys that arrive together over SSH or from a paste come this way).
    tmux("send-keys", "-t", "tui", "-l", "\x15三亚")
    screen = tmux.wait_for_text("2 photos ·")
    assert "IMG_0001.jpg" in screen and "IMG_0002.jpg" in screen
    tmux("send-keys", "-t", "tui", "C-q")
