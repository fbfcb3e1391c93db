"""The results: a grid (or list) of cards, each a thumbnail with the filename, the date and the score.

Cards are pooled: a new set of results rewrites the text of the cards already mounted instead of
removing and mounting widgets, which is what keeps a keystroke's results on screen within a frame or two.
Thumbnails are decoded in a thread worker and dropped into the cards as they arrive, so the text of the
results never waits for pictures.
"""

from __future__ import annotations

import logging
from typing import Callable

from PIL import Image as PILImage
from rich.cells import cell_len
from rich.text import Text
from textual import events, work
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from photod.errors import PhotodError
from photod.search.results import reasons, video_label
from photod.tui.widgets.images import cell_shape, fit_cells, image_class

log = logging.getLogger(__name__)

CARD_WIDTH = 25  # cells, gutter included
CARD_HEIGHT = 10
LIST_NAME_CELLS = 36
THUMB_BOX = (20, 6)  # cells the thumbnail may take in a card

Loader = Callable[[int], "PILImage.Image | None"]


def picture_id(result: dict) -> int:
    """Whose staged picture a card shows: a video's at the moment that matched, else the photo's own."""
    return result.get("frame_id") or result["id"]


def result_meta(result: dict) -> str:
    """The second line of a card: date, score, a video's moment and length, and whether the original can
    be opened now."""
    parts = []
    taken = result.get("taken_at")
    parts.append(str(taken)[:10] if taken else "no date")
    if result.get("kind") == "video":
        parts.append(video_label(result) or "")
    if result.get("score") is not None:
        parts.append(f"{result['score']:.2f}")
    if not result.get("online", True):
        parts.append("offline")
    return " · ".join(parts)


class ResultCard(Vertical):
    """One result. Clicking selects it; a double click opens it.

    Four widgets per card, and text updates that never ask for a new layout: with sixty cards, every
    widget and every reflow saved is time a keystroke's results reach the screen sooner.
    """

    class Clicked(Message):
        def __init__(self, card: "ResultCard", chain: int) -> None:
            super().__init__()
            self.card = card
            self.chain = chain

    def __init__(self, index: int, image_mode: str) -> None:
        # Children are made here, not in compose(), so a card can show a result the moment it is mounted.
        image_cls = image_class(image_mode)
        self._image = image_cls(None, classes="thumb") if image_cls is not None else None
        if self._image is not None:
            self._image.display = False
        self._text = Static("", classes="card-text")
        box = Container(*([self._image] if self._image is not None else []), classes="thumb-box")
        super().__init__(box, self._text, classes="card")
        self.index = index
        self.image_mode = image_mode
        self.result: dict | None = None
        self._picture: PILImage.Image | None = None
        self._shape: tuple[int, int] | None = None

    def show(self, result: dict, selected: bool, list_mode: bool = False) -> None:
        """Show a result's text; its picture comes later through set_picture."""
        self.result = result
        name = ("✓ " if selected else "") + result["filename"]
        meta = result_meta(result)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(name, style="bold")
        # Why it was found, in the owner's words, the photo's text or its place; the score is in the meta.
        quoted = "".join(f"「{why}」" for why in reasons(result) if not why.startswith(("相似度", "文件名")))
        if list_mode:
            # Columns line up whatever the script: pad by terminal cells, not characters (CJK is 2 wide).
            text.append(" " * max(2, LIST_NAME_CELLS - cell_len(name)))
            text.append(f"{meta:<28}{result.get('folder') or ''}", style="dim")
            text.append(f"  {quoted}" if quoted else "")
        else:
            text.append("\n")
            text.append(meta + (f" · {quoted}" if quoted else ""), style="dim")
        self._text.update(text, layout=False)
        self.set_class(selected, "-selected")
        self.set_class(not result.get("online", True), "-offline")

    def set_picture(self, picture: PILImage.Image | None) -> None:
        image = self._image
        if image is None or picture is self._picture:
            return
        self._picture = picture
        if picture is None:
            image.display = False
            return
        shape = fit_cells(picture, THUMB_BOX[0], THUMB_BOX[1], cell_shape(self.image_mode))
        if shape != self._shape:
            self._shape = shape
            image.styles.width, image.styles.height = shape
        image.image = picture
        image.display = True

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Clicked(self, event.chain))


class ResultGrid(Widget, can_focus=True):
    """The results as a window of cards over the whole list, with a cursor and a selection.

    Only the cards that fit on screen exist; moving or scrolling past the window rebinds them to other
    results. Layout work per keystroke is then the same for 12 results or 600.
    """

    BINDINGS = [
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "open", "Open"),
        Binding("space", "toggle_select", "Select"),
    ]

    class Opened(Message):
        """A result was opened (enter or double click)."""

        def __init__(self, result: dict) -> None:
            super().__init__()
            self.result = result

    class Shown(Message):
        """A new set of results is on screen (tests and the benchmark wait for this)."""

        def __init__(self, generation: int, count: int) -> None:
            super().__init__()
            self.generation = generation
            self.count = count

    class SelectionChanged(Message):
        """Photos were selected or unselected."""

    class WindowChanged(Message):
        """The visible part of the results moved (first and last shown, 1-based, and the total)."""

        def __init__(self, first: int, last: int, total: int) -> None:
            super().__init__()
            self.first, self.last, self.total = first, last, total

    def __init__(self, loader: Loader | None, image_mode: str = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        self.loader = loader
        self.image_mode = image_mode
        self.results: list[dict] = []
        self.cursor = 0
        self.top = 0
        self.selected: dict[int, dict] = {}
        self.generation = 0
        self.shown_generation = 0
        self._cards: list[ResultCard] = []
        self._pictures: dict[int, PILImage.Image] = {}
        self._columns = 1
        self._rows = 1

    # -- results

    def set_results(self, results: list[dict], generation: int) -> None:
        """Show new results in the cards already mounted; pictures follow from a worker."""
        self.generation = generation
        self.results = results
        self.cursor = 0
        self.top = 0
        self._bind()
        self.shown_generation = generation
        self.post_message(self.Shown(generation, len(results)))
        self._request_pictures()

    def _request_pictures(self) -> None:
        # Visible cards first, then the rest, so scrolling finds pictures ready.
        visible = self.results[self.top : self.top + len(self._cards)]
        order = visible + self.results[: self.top] + self.results[self.top + len(self._cards) :]
        missing = [picture_id(r) for r in order if picture_id(r) not in self._pictures and r.get("state") != "failed"]
        if self.loader is not None and missing and image_class(self.image_mode) is not None:
            self._load_pictures(self.generation, missing)

    def _bind(self) -> None:
        """Point each card at the result it shows now (top + its place), or leave it empty."""
        list_mode = self.has_class("-list")
        for i, card in enumerate(self._cards):
            index = self.top + i
            card.index = index
            if index < len(self.results):
                result = self.results[index]
                card.show(result, result["id"] in self.selected, list_mode)
                card.set_picture(self._pictures.get(picture_id(result)))
                card.set_class(False, "-empty")
            else:
                # Hidden, not removed: the window keeps its layout, so nothing reflows.
                card.result = None
                card.set_class(True, "-empty")
            card.set_class(index == self.cursor and card.result is not None, "-cursor")
        last = min(len(self.results), self.top + len(self._cards))
        self.post_message(self.WindowChanged(self.top + 1 if self.results else 0, last, len(self.results)))

    @work(thread=True, exclusive=True, group="pictures")
    def _load_pictures(self, generation: int, ids: list[int]) -> None:
        worker = get_current_worker()
        for pid in ids:
            if worker.is_cancelled or generation != self.generation:
                return
            try:
                picture = self.loader(pid) if self.loader else None
            except PhotodError as exc:
                log.debug("no thumbnail for photo %s: %s", pid, exc.message)
                picture = None
            if picture is not None and not worker.is_cancelled:
                self.app.call_from_thread(self._deliver, generation, pid, picture)

    def _deliver(self, generation: int, photo_id: int, picture: PILImage.Image) -> None:
        if len(self._pictures) > 2048:
            self._pictures.clear()
        self._pictures[photo_id] = picture
        for card in self._cards:
            if card.result is not None and picture_id(card.result) == photo_id:
                card.set_picture(picture)

    @property
    def current(self) -> dict | None:
        """The result under the cursor."""
        if 0 <= self.cursor < len(self.results):
            return self.results[self.cursor]
        return None

    def targets(self) -> list[dict]:
        """What an action applies to: the selection if there is one, else the result under the cursor."""
        if self.selected:
            return list(self.selected.values())
        return [self.current] if self.current else []

    def clear_selection(self) -> None:
        self.selected.clear()
        self._bind()
        self.post_message(self.SelectionChanged())

    # -- layout

    def on_resize(self, event: events.Resize) -> None:
        self._relayout()

    def set_list_mode(self, on: bool) -> None:
        self.set_class(on, "-list")
        self._relayout()
        self._bind()

    def _relayout(self) -> None:
        """As many cards as fit: columns of CARD_WIDTH, rows of CARD_HEIGHT (one line each in list mode)."""
        width, height = self.size
        if self.has_class("-list"):
            columns, rows = 1, max(1, height)
        else:
            columns, rows = max(1, (width - 2) // CARD_WIDTH), max(1, height // CARD_HEIGHT)
        if (columns, rows) == (self._columns, self._rows) and len(self._cards) == columns * rows:
            return
        self._columns, self._rows = columns, rows
        self.styles.grid_size_columns = columns
        wanted = columns * rows
        if len(self._cards) > wanted:
            extra, self._cards = self._cards[wanted:], self._cards[:wanted]
            for card in extra:
                card.remove()
        new = [ResultCard(len(self._cards) + i, self.image_mode) for i in range(wanted - len(self._cards))]
        if new:
            self._cards.extend(new)
            self.mount_all(new)
        self._scroll_to_result(self.cursor)
        self._bind()
        self._request_pictures()

    # -- cursor, scrolling and selection

    def _scroll_to_result(self, index: int) -> None:
        """Move the window so that result `index` is in it."""
        per_window = max(1, len(self._cards))
        row_top = self.top
        if index < self.top:
            row_top = (index // self._columns) * self._columns
        elif index >= self.top + per_window:
            row_top = (index // self._columns - self._rows + 1) * self._columns
        self.top = max(0, row_top)

    def _set_cursor(self, index: int) -> None:
        if not self.results:
            return
        self.cursor = max(0, min(len(self.results) - 1, index))
        before = self.top
        self._scroll_to_result(self.cursor)
        if self.top != before:
            self._bind()
            self._request_pictures()
        else:
            for card in self._cards:
                card.set_class(card.index == self.cursor and card.result is not None, "-cursor")

    def _scroll_rows(self, rows: int) -> None:
        last_top = max(0, ((len(self.results) - 1) // self._columns - self._rows + 1) * self._columns)
        top = max(0, min(last_top, self.top + rows * self._columns))
        if top != self.top:
            self.top = top
            self.cursor = min(max(self.cursor, top), top + len(self._cards) - 1)
            self._bind()
            self._request_pictures()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self._scroll_rows(1)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self._scroll_rows(-1)

    def action_move(self, dx: int, dy: int) -> None:
        if dy < 0 and self.cursor < self._columns:
            # Up from the first row goes back to the search box.
            self.screen.focus_previous()
            return
        self._set_cursor(self.cursor + dx + dy * self._columns)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor + direction * max(1, len(self._cards)))

    def action_jump(self, index: int) -> None:
        self._set_cursor(index if index >= 0 else len(self.results) - 1)

    def action_open(self) -> None:
        if self.current is not None:
            self.post_message(self.Opened(self.current))

    def action_toggle_select(self) -> None:
        current = self.current
        if current is None:
            return
        if current["id"] in self.selected:
            del self.selected[current["id"]]
        else:
            self.selected[current["id"]] = current
        for card in self._cards:
            if card.index == self.cursor:
                card.show(current, current["id"] in self.selected, self.has_class("-list"))
        self.post_message(self.SelectionChanged())

    def on_result_card_clicked(self, message: ResultCard.Clicked) -> None:
        self.focus()
        self._set_cursor(message.card.index)
        if message.chain >= 2:
            self.action_open()
