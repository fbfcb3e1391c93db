"""The status screen: roots and their watch mode, counts, the work queue and its rate, the model, failures.

It refreshes on an interval, so with the daemon running it shows the queue draining and photos arriving.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from photod.errors import NoModelError
from photod.service.status import format_signals
from photod.tui.data import ActivityMeter, Library

if TYPE_CHECKING:
    from photod.tui.app import PhotodApp


def model_line(model: dict | None) -> str:
    if model is None:
        return f"none installed: searching {NoModelError.SEARCHED_WITHOUT} only. {NoModelError().hint}"
    if "error" in model:
        return f"broken: {model['error']}"
    return f"{model['name']} ({model['arch']}, {model['precision']})"


def activity_line(status: dict[str, Any], meter: ActivityMeter) -> str:
    """What the daemon is doing: whether it runs (photod.service.heartbeat), a scan in hand, and the work queue."""
    q = status["queue"]
    daemon = status.get("daemon") or {}
    if not daemon.get("running"):
        head = "not running (start it with `photod run`) · "
    elif str(daemon.get("activity", "")).startswith("scanning"):
        head = f"{daemon['activity']} · "
    else:
        head = ""
    if meter.staged_per_min is None:
        rate = "rate: measuring"
    else:
        rate = f"staging {meter.staged_per_min:.0f}/min, indexing {meter.indexed_per_min:.0f}/min"
    if not q["to_stage"] and not q["to_encode"]:
        return f"{head}idle: nothing waiting · {rate}"
    return f"{head}queue: {q['to_stage']} to stage, {q['to_encode']} to encode · {rate}"


class StatusScreen(Screen):
    """Roots online or offline, counts, what the daemon is doing, failed files."""

    app: PhotodApp  # Textual types it App[Any]; this screen runs only in photod's app

    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("ctrl+r", "refresh", "Refresh"),
    ]

    def __init__(self, library: Library, interval: float = 2.0) -> None:
        super().__init__()
        self.library = library
        self.interval = interval
        self.meter = ActivityMeter()
        self.status: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="status"):
            yield Static("", id="status-summary", markup=False)
            yield Label("Roots", classes="section")
            yield DataTable(id="roots-table", cursor_type="row", zebra_stripes=True)
            yield Label("Failed files", classes="section")
            yield DataTable(id="failed-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#roots-table", DataTable).add_columns("root", "path", "state", "watch", "fs", "photos")
        self.query_one("#failed-table", DataTable).add_columns("file", "reason")
        self.action_refresh()
        if self.interval > 0:
            self.set_interval(self.interval, self.action_refresh)

    def action_refresh(self) -> None:
        self.app.run_job(self.library.status, self._show, group="status")

    def _show(self, status: dict[str, Any]) -> None:
        self.status = status
        self.meter.feed(status["photos"], time.monotonic())
        p = status["photos"]
        self.query_one("#status-summary", Static).update(
            "\n".join(
                [
                    f"files   {p['total']} ({p['photos']} photos, {p['videos']} videos) · {p['indexed']} indexed · "
                    f"{p['staged']} staged · {p['new']} new · "
                    f"{p['failed']} failed · {p['offline']} offline · {p['deleted']} deleted (kept for now)",
                    f"daemon  {activity_line(status, self.meter)}",
                    f"model   {model_line(status['model'])}",
                    *(f"search  {line}" for line in format_signals(status["signals"])),
                    f"data    {status['data_dir']}",
                ]
            )
        )
        roots = self.query_one("#roots-table", DataTable)
        roots.clear()
        for r in status["roots"]:
            mode = r["watch_mode"] or ("not watched" if r["online"] else "-")
            roots.add_row(
                r["label"],
                r["path"],
                "online" if r["online"] else "OFFLINE",
                f"{r['watch']} → {mode}" if r["watch"] == "auto" else mode,
                r["fs_type"] or "?",
                str(r["photos"]),
            )
        failed = self.query_one("#failed-table", DataTable)
        failed.clear()
        for f in status["failed"]:
            failed.add_row(f"{f['root_path'].rstrip('/')}/{f['rel_path']}", f["error"] or "unknown")
        if not status["failed"]:
            failed.add_row("none", "")
