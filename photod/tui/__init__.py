"""The terminal UI (`photod tui`): search, photo detail, captions and status, in Textual."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from photod.config import Config


def run_tui(cfg: "Config", *, image_mode: str | None = None) -> int:
    """Run the terminal UI (see photod.tui.app.run_tui); Textual is imported only when it runs."""
    from photod.tui.app import run_tui as run

    return run(cfg, image_mode=image_mode)
