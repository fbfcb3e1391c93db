"""The search screen: one input, live results as the person types, filters, and actions on results.

Searches run in a thread worker. At most one runs at a time: keystrokes that arrive meanwhile only
remember the latest query, which runs as soon as the one in flight returns. So typing never waits for a
search and the screen never falls behind a queue of stale ones.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from photod.errors import PhotodError
from photod.search.finder import Outcome, Query
from photod.search.results import reasons
from photod.tui.data import Library, full_path
from photod.tui.screens.captions import CaptionEditor
from photod.tui.screens.detail import DetailScreen
from photod.tui.widgets.filters import FilterBar
from photod.tui.widgets.inputs import TextField
from photod.tui.widgets.results import ResultGrid

if TYPE_CHECKING:
    from photod.tui.app import PhotodApp

log = logging.getLogger(__name__)

# No fixed delay: a keystroke's search starts at once, and keystrokes that arrive while it runs collapse
# into the one search that follows it (a paste, an input method committing several characters).
DEBOUNCE_SECONDS = 0.0
WATCH_SECONDS = 5.0  # how often to look whether the daemon changed the catalog

MODE_WORDS = {"meaning": "by meaning", "names": "by filename", "recent": "newest first", "like": "similar"}


class SearchScreen(Screen):
    """Where photos are found."""

    app: PhotodApp  # Textual types it App[Any]; this screen runs only in photod's app

    BINDINGS = [
        Binding("escape", "focus_query", "Search", show=False),
        # A priority binding runs as the key arrives, before the keys typed after it are handed to a widget.
        Binding("slash", "type_query", "Search", show=False, priority=True),
        Binding("f2", "toggle_filters", "Filters"),
        Binding("f3", "toggle_names", "Names/meaning"),
        Binding("f4", "toggle_list", "Grid/list"),
        Binding("ctrl+r", "refresh", "Refresh"),
        Binding("c", "captions", "Caption"),
        Binding("m", "more_like", "More like"),
        Binding("a", "toggle_all", "All matches"),
        Binding("plus,r", "mark(True)", "Right"),
        Binding("minus,w", "mark(False)", "Wrong"),
        Binding("o", "open_viewer", "View", show=False),
        Binding("y", "copy_path", "Copy path", show=False),
        Binding("u", "unselect", "Unselect", show=False),
    ]
    # These keys act on results; while a text field has focus they are part of what is typed ("/" too).
    _RESULT_ACTIONS = {
        "captions",
        "more_like",
        "mark",
        "open_viewer",
        "copy_path",
        "unselect",
        "type_query",
        "toggle_all",
    }

    def __init__(self, library: Library, image_mode: str = "auto") -> None:
        super().__init__()
        self.library = library
        self.image_mode = image_mode
        self.query_state = Query()
        self.outcome: Outcome | None = None
        self._generation = 0
        self._search_busy = False
        self._timer: Timer | None = None
        self._like_name = ""
        self._note_text: str | None = None

    def compose(self) -> ComposeResult:
        yield TextField(
            placeholder='describe a photo: 海边的日落, 2019年夏天 三亚 -人, "三亚湾", or a filename', id="query"
        )
        yield FilterBar(id="filters", classes="-hidden")
        yield Static("", id="note", markup=False)
        yield ResultGrid(self.library.thumbnail, self.image_mode, id="results")
        yield Static("", id="summary", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#query", Input).focus()
        self._load_roots()
        self.schedule_search(immediate=True)
        self.set_interval(WATCH_SECONDS, self._watch_catalog)

    # ---- running searches

    def schedule_search(self, immediate: bool = False) -> None:
        """Ask for the current query to be run; only the newest request is ever shown."""
        self._generation += 1
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if immediate or DEBOUNCE_SECONDS <= 0:
            self._launch()
        else:
            self._timer = self.set_timer(DEBOUNCE_SECONDS, self._launch)

    def _launch(self) -> None:
        self._timer = None
        if self._search_busy:
            return  # _finished launches the newest query when the one in flight returns
        self._search_busy = True
        self._search(self.query_state, self._generation)

    @work(thread=True, group="search")
    def _search(self, query: Query, generation: int) -> None:
        outcome, error = None, None
        try:
            outcome = self.library.search(query)
        except PhotodError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - the UI reports a failed search, it does not die of one
            log.exception("search failed")
            error = PhotodError(f"search failed: {exc}", "see the log; filename search (f3) may still work")
        self.app.call_from_thread(self._finished, generation, outcome, error)

    def _finished(self, generation: int, outcome: Outcome | None, error: PhotodError | None) -> None:
        self._search_busy = False
        if generation == self._generation:
            if error is not None:
                self.app.show_error(error)
            elif outcome is not None:
                self._show(outcome, generation)
        elif self._timer is None:
            self._launch()

    def _show(self, outcome: Outcome, generation: int) -> None:
        self.outcome = outcome
        if outcome.note != self._note_text:
            # Only when it changes: a new note means a new layout, which costs a frame.
            self._note_text = outcome.note
            note = self.query_one("#note", Static)
            note.update(outcome.note or "")
            note.display = bool(outcome.note)
        self.query_one(ResultGrid).set_results(outcome.results, generation)
        self.query_one("#summary", Static).update(self._summary(outcome), layout=False)

    def _summary(self, outcome: Outcome) -> str:
        n = len(outcome.results)
        words = [f"{n} photo{'s' if n != 1 else ''}", MODE_WORDS[outcome.mode]]
        if outcome.mode == "like":
            words[1] = f"like {self._like_name}"
        if outcome.query.filters.active():
            words.append("filtered")
        if outcome.understood:
            words.append("".join(f"「{u}」" for u in outcome.understood))
        if outcome.hidden:
            words.append(f"{outcome.hidden} weaker hidden (a: show)")
        elif outcome.query.show_all:
            words.append("all matches (a: hide weaker)")
        grid = self.query_one(ResultGrid)
        if grid.selected:
            words.append(f"{len(grid.selected)} selected")
        if n and n > len(grid._cards) > 0:
            words.append(f"showing {grid.top + 1}–{min(n, grid.top + len(grid._cards))}")
        return " · ".join(words)

    # ---- the daemon writes while we read

    @work(thread=True, group="watch", exclusive=True)
    def _watch_catalog(self) -> None:
        try:
            changed = self.library.changed()
        except Exception:  # noqa: BLE001 - a busy or missing catalog is looked at again next time
            log.debug("could not check the catalog for changes", exc_info=True)
            return
        if changed:
            self.app.call_from_thread(self._catalog_changed)

    def _catalog_changed(self) -> None:
        # New photos appear without a restart, but never under the cursor of someone browsing results.
        if not self.query_one(ResultGrid).has_focus and self.query_state.like is None:
            self.schedule_search(immediate=True)
        self._load_roots()

    @work(thread=True, group="roots", exclusive=True)
    def _load_roots(self) -> None:
        try:
            roots = self.library.roots()
        except PhotodError as exc:
            self.app.call_from_thread(self.app.show_error, exc)
            return
        self.app.call_from_thread(self.query_one(FilterBar).set_roots, roots)

    # ---- events

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "query":
            return
        self.query_state = replace(self.query_state, text=event.value, like=None)
        self.schedule_search()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "query":
            self.query_one(ResultGrid).focus()

    def on_filter_bar_changed(self, event: FilterBar.Changed) -> None:
        self.query_state = replace(self.query_state, filters=event.filters)
        self.schedule_search()

    def on_result_grid_opened(self, event: ResultGrid.Opened) -> None:
        self.app.push_screen(
            DetailScreen(
                self.library,
                event.result["id"],
                self._feedback_query(),
                self.image_mode,
                found_by=reasons(event.result),
            ),
            self._detail_closed,
        )

    def _detail_closed(self, more_like: dict | None) -> None:
        # A detail screen hands back its photo when the person asked for more like it there.
        if more_like is not None:
            self.action_more_like(more_like)

    def on_key(self, event) -> None:
        # Down from the search box moves into the results, as in a browser's address bar.
        if event.key == "down" and self.focused is self.query_one("#query", Input):
            self.query_one(ResultGrid).focus()
            event.stop()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in self._RESULT_ACTIONS and isinstance(self.focused, Input):
            return False
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    # ---- actions

    def action_focus_query(self) -> None:
        self.query_one("#query", Input).focus()

    def action_type_query(self) -> None:
        # Focus moves now, not on the next turn of the message loop as `focus()` would have it, so that "/cat"
        # arriving in one read puts "cat" in the search box rather than giving "c" to the results.
        self.set_focus(self.query_one("#query", Input))

    def action_toggle_filters(self) -> None:
        bar = self.query_one(FilterBar)
        bar.toggle_class("-hidden")
        if not bar.has_class("-hidden"):
            bar.query_one("#f-after", Input).focus()
        else:
            self.action_focus_query()

    def action_toggle_names(self) -> None:
        self.query_state = replace(self.query_state, names_only=not self.query_state.names_only)
        self.app.notify(
            "searching filenames only"
            if self.query_state.names_only
            else "searching by meaning (when a model is installed)"
        )
        self.schedule_search(immediate=True)

    def action_toggle_all(self) -> None:
        """Show the weaker matches the per-query cutoff hides, or hide them again."""
        self.query_state = replace(self.query_state, show_all=not self.query_state.show_all)
        self.schedule_search(immediate=True)

    def action_toggle_list(self) -> None:
        grid = self.query_one(ResultGrid)
        grid.set_list_mode(not grid.has_class("-list"))

    def action_refresh(self) -> None:
        self.schedule_search(immediate=True)

    def _targets(self) -> list[dict]:
        return self.query_one(ResultGrid).targets()

    def action_captions(self) -> None:
        targets = self._targets()
        if targets:
            self.app.push_screen(CaptionEditor(self.library, targets))

    def action_more_like(self, photo: dict | None = None) -> None:
        """Photos like the one under the cursor (or `photo`): an image-to-image search."""
        photo = photo or self.query_one(ResultGrid).current
        if photo is None:
            return
        self._like_name = photo["filename"]
        self.query_state = replace(self.query_state, text="", like=photo["id"])  # the photo alone
        self.schedule_search(immediate=True)

    def _feedback_query(self) -> str:
        return "" if self.query_state.like is not None else self.query_state.text

    def action_mark(self, relevant: bool) -> None:
        current = self.query_one(ResultGrid).current
        if current is None:
            return
        query = self._feedback_query()

        def done(_: int) -> None:
            verdict = "right" if relevant else "wrong"
            self.app.notify(f"{current['filename']} marked {verdict} for “{query.strip()}”")

        self.app.run_job(lambda: self.library.feedback(current["id"], query, relevant), done)

    def action_open_viewer(self) -> None:
        current = self.query_one(ResultGrid).current
        if current is not None:
            self.app.open_path(self._file_of(current), current.get("video_time"))

    def action_copy_path(self) -> None:
        current = self.query_one(ResultGrid).current
        if current is not None:
            self.app.copy_path(self._file_of(current))

    def _file_of(self, result: dict) -> str:
        """The result's file by its exact bytes (`path` has the bytes of a name that is not UTF-8 escaped)."""
        row = self.library.photo(result["id"])
        return str(full_path(row)) if row is not None else result["path"]

    def action_unselect(self) -> None:
        self.query_one(ResultGrid).clear_selection()

    def on_result_grid_window_changed(self) -> None:
        self.on_result_grid_selection_changed()

    def on_result_grid_selection_changed(self) -> None:
        if self.outcome is not None:
            self.query_one("#summary", Static).update(self._summary(self.outcome), layout=False)
