"""One photo: a larger preview from the stage, where the original is, what the camera recorded, captions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static
from textual_image.widget import BaseImage

from photod.search.results import clock
from photod.store.names import shown
from photod.tui.data import CaptionGroup, Library, PhotoDetail, full_path, human_size, shown_full_path
from photod.tui.screens.captions import CaptionEditor
from photod.tui.widgets.images import cell_shape, fit_cells, image_class

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from photod.store.signals import PlaceRow, TextRow
    from photod.tui.app import PhotodApp

    # What the detail screen reads off the UI thread: the photo, its captions, its picture, (text, place).
    _Loaded = tuple[
        PhotoDetail | None, list[CaptionGroup], PILImage.Image | None, tuple[TextRow | None, PlaceRow | None]
    ]


def describe(row: PhotoDetail, place: PlaceRow | None = None) -> list[tuple[str, str]]:
    """The facts of a photo as (label, value) lines, in the order a person reads them; `place` is its
    photo_places row, when it has one."""
    online = bool(row["root_online"]) and row["state"] != "offline"
    camera = " ".join(x for x in (row.get("camera_make"), row.get("camera_model")) if x)
    size = human_size(row.get("size"))
    if row.get("width") and row.get("height"):
        size = f"{row['width']} × {row['height']}, {size}"
    gps = ""
    if row.get("gps_lat") is not None and row.get("gps_lon") is not None:
        gps = f"{row['gps_lat']:.5f}, {row['gps_lon']:.5f}"
    facts = [
        ("File", Path(shown_full_path(row)).name),
        ("Path", shown_full_path(row)),
        ("Root", f"{row['root_label'] or row['root_path']} ({'online' if online else 'OFFLINE'})"),
        ("Taken", (row.get("taken_at") or "unknown").replace("T", " ")),
        ("Camera", camera or "unknown"),
        ("Lens", row.get("lens") or "unknown"),
        ("GPS", gps or "none"),
        ("Place", _place_text(place) if gps else "no GPS"),
        ("Size", size),
        ("State", row["state"] + (f": {row['error']}" if row.get("error") else "")),
    ]
    if row.get("kind") == "video":
        facts.insert(2, ("Video", f"{clock(row['duration'] or 0)} long, {row.get('format') or 'video'}"))
    facts[2:2] = [
        (label, text) for label, text in map(lambda link: _link_text(row["id"], link), row.get("links") or ())
    ]
    return facts


# (kind, whether this photo is the one shown) -> how the other file is named in the facts
_LINK_LABELS = {
    ("raw", True): "RAW",
    ("raw", False): "JPEG",
    ("motion", True): "Motion",
    ("motion", False): "Still",
    ("edited", True): "Edited",
    ("edited", False): "Original",
}


def _link_text(photo_id: int, link: dict[str, Any]) -> tuple[str, str]:
    """A file that belongs with this photo, as a fact line: ("RAW", "IMG_0001.DNG (deleted)")."""
    mine = link["photo_id"] == photo_id  # this photo is the one shown; the other is attached to it
    side = "other" if mine else "shown"
    label = _LINK_LABELS[(link["kind"], mine)]
    name = shown(link[f"{side}_rel_path"], link[f"{side}_rel_bytes"])
    state = link[f"{side}_state"]
    return label, name + (f" ({state})" if state in ("deleted", "failed", "offline") else "")


def _place_text(place: PlaceRow | None) -> str:
    if place is None:
        return "not looked up yet"
    if not place.get("label_zh"):
        return "in no known area (at sea?)"
    return f"{place['label_zh']} · {place['label_en']}"


def text_lines(text_row: TextRow | None) -> str:
    """The text read in a photo as the detail screen shows it."""
    if text_row is None:
        return "not read yet"
    if text_row.get("error"):
        return f"could not be read: {text_row['error']}"
    return text_row["text"] or "none found"


class DetailScreen(Screen[dict | None]):
    """A photo in detail. Escape goes back to the results; "more like this" goes back too, handing the photo
    to the screen that opened this one as the result, so that screen runs the search."""

    app: PhotodApp  # Textual types it App[Any]; this screen runs only in photod's app

    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("o", "open_viewer", "View"),
        Binding("y", "copy_path", "Copy path"),
        Binding("m", "more_like", "More like"),
        Binding("f", "reveal", "Folder"),
        Binding("c", "captions", "Captions"),
        Binding("plus,r", "mark(True)", "Right"),
        Binding("minus,w", "mark(False)", "Wrong"),
    ]

    def __init__(
        self,
        library: Library,
        photo_id: int,
        query: str = "",
        image_mode: str = "auto",
        found_by: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.found_by = found_by or []  # why the search found it (photod.search.results.reasons)
        self.library = library
        self.photo_id = photo_id
        self.query_text = query
        self.image_mode = image_mode
        self.row: PhotoDetail | None = None
        self.groups: list[CaptionGroup] = []
        self._picture: PILImage.Image | None = None
        self.loaded = False

    def compose(self) -> ComposeResult:
        image_cls = image_class(self.image_mode)
        with Horizontal(id="detail"):
            with Container(id="preview-box"):
                if image_cls is not None:
                    yield image_cls(None, id="preview")
                yield Static("loading…", id="no-preview")
            with VerticalScroll(id="info"):
                yield Static("", id="facts")
                if self.found_by:
                    yield Label("Found by", classes="section")
                    yield Static("\n".join(self.found_by), id="found-by", markup=False)
                yield Label("Captions", classes="section")
                yield Static("", id="caption-list", markup=False)
                yield Label("Text in photo", classes="section")
                yield Static("", id="photo-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Read the photo, its captions and its picture again (after a caption edit)."""
        self.app.run_job(self._read, self._show)

    def _read(self) -> _Loaded:
        row = self.library.photo(self.photo_id)
        groups = self.library.caption_groups([self.photo_id]) if row else []
        picture = self._picture or (self.library.preview(self.photo_id) if row else None)
        return row, groups, picture, self.library.signals(self.photo_id) if row else (None, None)

    def _show(self, loaded: _Loaded) -> None:
        row, groups, picture, (text_row, place) = loaded
        if row is None:
            self.app.notify(f"photo {self.photo_id} is no longer in the catalog", severity="warning")
            self.app.pop_screen()
            return
        self.row, self.groups, self._picture = row, groups, picture
        facts = "\n".join(f"[b]{label:<7}[/b] {_escape(value)}" for label, value in describe(row, place))
        self.query_one("#facts", Static).update(facts)
        self.query_one("#photo-text", Static).update(text_lines(text_row))
        self.query_one("#caption-list", Static).update(
            "\n".join(f"• {g.text}" for g in groups) or "none yet: press c to add one"
        )
        self._fit_preview()
        self.loaded = True

    def _fit_preview(self) -> None:
        placeholder = self.query_one("#no-preview", Static)
        if not self.query("#preview"):
            placeholder.update("")
            return
        image = self.query_one("#preview", BaseImage)
        if self._picture is None:
            image.display = False
            placeholder.display = True
            placeholder.update("not staged yet: the daemon makes a preview when it reaches this photo")
            return
        box = self.query_one("#preview-box")
        cols, rows = fit_cells(
            self._picture, max(box.size.width, 10), max(box.size.height, 5), cell_shape(self.image_mode)
        )
        image.styles.width = cols
        image.styles.height = rows
        image.image = self._picture
        image.display = True
        placeholder.display = False

    def on_resize(self, event: events.Resize) -> None:
        if self.loaded:
            self.call_after_refresh(self._fit_preview)

    # ---- actions

    def action_open_viewer(self) -> None:
        if self.row is not None:
            self.app.open_path(str(full_path(self.row)))

    def action_reveal(self) -> None:
        if self.row is not None:
            self.app.open_path(str(full_path(self.row).parent))

    def action_copy_path(self) -> None:
        if self.row is not None:
            self.app.copy_path(str(full_path(self.row)))

    def action_more_like(self) -> None:
        if self.row is not None:
            self.dismiss({"id": self.row["id"], "filename": self.row["filename"]})

    def action_captions(self) -> None:
        if self.row is not None:
            target = {"id": self.row["id"], "filename": self.row["filename"]}
            self.app.push_screen(CaptionEditor(self.library, [target]), lambda _: self.reload())

    def action_mark(self, relevant: bool) -> None:
        if self.row is None:
            return
        name = self.row["filename"]

        def done(_: int) -> None:
            verdict = "right" if relevant else "wrong"
            self.app.notify(f"{name} marked {verdict} for “{self.query_text.strip()}”")

        self.app.run_job(lambda: self.library.feedback(self.photo_id, self.query_text, relevant), done)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
