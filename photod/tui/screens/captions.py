"""Captions of one photo or of a selection: the words `photod finetune` learns from.

On a selection, a caption that several of the photos share is one line here: editing or deleting it
acts on every selected photo that has it, and a new caption goes onto all of them at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from photod.tui.data import CaptionGroup, Library
from photod.tui.widgets.inputs import TextField

if TYPE_CHECKING:
    from photod.tui.app import PhotodApp


class CaptionEditor(ModalScreen[bool]):
    """Add, edit and delete captions; dismisses with True when anything changed."""

    app: PhotodApp  # Textual types it App[Any]; this screen runs only in photod's app

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("e", "edit", "Edit"),
        Binding("d,delete", "delete", "Delete"),
        Binding("tab", "app.focus_next", "Next", show=False),
    ]

    def __init__(self, library: Library, photos: list[dict]) -> None:
        super().__init__()
        self.library = library
        self.photos = photos
        self.photo_ids = [p["id"] for p in photos]
        self.groups: list[CaptionGroup] = []
        self.editing: CaptionGroup | None = None
        self.changed = False

    def compose(self) -> ComposeResult:
        if len(self.photos) == 1:
            title = f"Captions of {self.photos[0]['filename']}"
        else:
            title = f"Captions of {len(self.photos)} selected photos"
        with Vertical(id="caption-editor"):
            yield Label(title, id="caption-title", markup=False)
            yield OptionList(id="caption-groups")
            yield TextField(placeholder="a new caption, e.g. 我家的猫在沙发上 (enter adds it)", id="caption-input")
            yield Label("enter: save · e: edit · d: delete · tab: switch · esc: close", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#caption-input", Input).focus()
        self.reload()

    def reload(self) -> None:
        self.app.run_job(lambda: self.library.caption_groups(self.photo_ids), self._show)

    def _show(self, groups: list[CaptionGroup]) -> None:
        self.groups = groups
        options = self.query_one("#caption-groups", OptionList)
        options.clear_options()
        total = len(self.photo_ids)
        for g in groups:
            share = "" if total == 1 else f"  ({len(g.photo_ids)} of {total})"
            options.add_option(Option(g.text + share))
        if groups:
            options.highlighted = 0

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # e and d are letters of a caption while one is being typed.
        if action in ("edit", "delete") and isinstance(self.focused, Input):
            return False
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def _highlighted(self) -> CaptionGroup | None:
        index = self.query_one("#caption-groups", OptionList).highlighted
        if index is None or not 0 <= index < len(self.groups):
            return None
        return self.groups[index]

    def _saved(self, message: str) -> None:
        self.changed = True
        self.app.notify(message)
        self.editing = None
        self.query_one("#caption-input", Input).value = ""
        self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        event.stop()
        editing = self.editing
        if editing is not None:
            self.app.run_job(
                lambda: self.library.update_captions(editing.caption_ids, text),
                lambda _: self._saved(f"caption changed on {len(editing.photo_ids)} photo(s)"),
            )
        else:
            ids = list(self.photo_ids)
            self.app.run_job(
                lambda: self.library.add_caption(ids, text),
                lambda _: self._saved(f"caption added to {len(ids)} photo(s)"),
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_edit()

    def action_edit(self) -> None:
        group = self._highlighted()
        if group is None:
            return
        self.editing = group
        field = self.query_one("#caption-input", Input)
        field.value = group.text
        field.focus()

    def action_delete(self) -> None:
        group = self._highlighted()
        if group is None:
            return
        self.app.run_job(
            lambda: self.library.remove_captions(group.caption_ids),
            lambda _: self._saved(f"caption “{group.text}” deleted from {len(group.photo_ids)} photo(s)"),
        )

    def action_close(self) -> None:
        if self.editing is not None:
            self.editing = None
            self.query_one("#caption-input", Input).value = ""
            return
        self.dismiss(self.changed)
