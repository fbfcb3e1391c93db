"""`photod tui`: the Textual application that ties the screens together.

The app owns the one Library (catalog, stage, searcher) the screens share, runs every blocking call in a
thread worker, and turns photod's errors into notifications: a person sees one line and a hint, never a
traceback.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

from textual.app import App
from textual.binding import Binding
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from photod.config import Config
from photod.errors import PhotodError
from photod.store.names import shell_quoted
from photod.tui.data import Library, open_with_system
from photod.tui.widgets.images import IMAGE_MODES

log = logging.getLogger(__name__)

IMAGE_MODE_ENV = "PHOTOD_TUI_IMAGES"


class PhotodApp(App):
    """The photod terminal UI."""

    CSS_PATH = "app.tcss"
    TITLE = "photod"
    BINDINGS = [
        Binding("f1", "help('key')", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("f5", "status", "Status"),
        Binding("ctrl+q", "quit", "Quit"),
    ]
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        cfg: Config,
        *,
        image_mode: str | None = None,
        library: Library | None = None,
        status_interval: float = 2.0,
        semantic: bool = True,
    ) -> None:
        super().__init__()
        mode = image_mode or os.environ.get(IMAGE_MODE_ENV, "auto")
        if mode not in IMAGE_MODES:
            raise PhotodError(
                f"{IMAGE_MODE_ENV}={mode!r} is not an image mode", f"use one of: {', '.join(IMAGE_MODES)}"
            )
        self.cfg = cfg
        self.image_mode = mode
        self.library = library or Library(cfg, semantic=semantic)
        self.status_interval = status_interval
        self._jobs: dict[Worker, tuple[Callable[[Any], None] | None, Callable[[PhotodError], None] | None]] = {}

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # `?` is a character of a query while the search box (or any text field) has focus; F1 still works.
        if action == "help" and isinstance(self.focused, Input) and parameters != ("key",):
            return False
        return True

    def on_mount(self) -> None:
        from photod.tui.screens.search import SearchScreen

        self.push_screen(SearchScreen(self.library, self.image_mode))

    def on_unmount(self) -> None:
        self.library.close()

    # ---- background jobs

    def run_job(
        self,
        fn: Callable[[], Any],
        then: Callable[[Any], None] | None = None,
        group: str = "jobs",
        on_error: Callable[[PhotodError], None] | None = None,
    ) -> Worker:
        """Run a blocking call in a thread; `then(result)` runs on the UI thread, errors notify."""
        worker = self.run_worker(fn, thread=True, group=group, exit_on_error=False)
        self._jobs[worker] = (then, on_error)
        return worker

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        callbacks = self._jobs.get(event.worker)
        if callbacks is None or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        del self._jobs[event.worker]
        then, on_error = callbacks
        if event.state == WorkerState.SUCCESS:
            if then is not None:
                then(event.worker.result)
            return
        error = event.worker.error
        if error is None:
            return
        if not isinstance(error, PhotodError):
            log.error("background job failed", exc_info=error)
            error = PhotodError(f"{type(error).__name__}: {error}", "this is a bug in photod; see the log")
        if on_error is not None:
            on_error(error)
        else:
            self.show_error(error)

    def show_error(self, error: PhotodError) -> None:
        """A domain error as a notification: the message, and the hint on its own line."""
        text = error.message if not error.hint else f"{error.message}\nhint: {error.hint}"
        self.notify(text, severity="error", timeout=10, markup=False)

    # ---- actions shared by screens

    def open_path(self, path: str, at: float | None = None) -> None:
        """Open a photo or folder with the system viewer (a video at `at` seconds where the player can);
        problems become notifications."""
        shown = shell_quoted(path)
        self.run_job(lambda: open_with_system(Path(path), at), lambda _: self.notify(f"opening {shown}", markup=False))

    def copy_path(self, path: str) -> None:
        # OSC 52: the terminal puts it on the clipboard of the machine the person sits at, even over SSH.
        # A clipboard holds text: a name that is not UTF-8 is copied as a shell word that means its bytes.
        text = shell_quoted(path)
        self.copy_to_clipboard(text)
        self.notify(f"copied {text}", markup=False)

    def action_help(self, via: str = "") -> None:
        from photod.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_status(self) -> None:
        from photod.tui.screens.status import StatusScreen

        if not isinstance(self.screen, StatusScreen):
            self.push_screen(StatusScreen(self.library, self.status_interval))


def run_tui(cfg: Config, *, image_mode: str | None = None) -> int:
    """Run the terminal UI until the person quits; returns the exit code for `photod tui`."""
    app = PhotodApp(cfg, image_mode=image_mode)
    app.run()
    return app.return_code or 0
