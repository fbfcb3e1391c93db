"""The filter bar: date range, root, folder, camera, place and "online only"."""

from __future__ import annotations

from textual.containers import Horizontal
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Checkbox, Input, Select

from photod.search.finder import Filters, parse_date
from photod.tui.widgets.inputs import TextField


class DateValidator(Validator):
    """A date filter must be YYYY, YYYY-MM or YYYY-MM-DD (and a real date)."""

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_date(value)
        except ValueError as exc:
            return self.failure(str(exc))
        return self.success()


class FilterBar(Horizontal):
    """Posts `FilterBar.Changed` with the new Filters whenever a valid value changes."""

    class Changed(Message):
        def __init__(self, filters: Filters) -> None:
            super().__init__()
            self.filters = filters

    def __init__(self, roots: list[tuple[str, int]] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._roots = roots or []
        self.filters = Filters()

    def compose(self):
        yield TextField(
            placeholder="after YYYY-MM-DD", id="f-after", validators=[DateValidator()], valid_empty=True, classes="date"
        )
        yield TextField(
            placeholder="before YYYY-MM-DD",
            id="f-before",
            validators=[DateValidator()],
            valid_empty=True,
            classes="date",
        )
        yield Select(
            [(label, str(rid)) for label, rid in self._roots], prompt="all roots", id="f-root", allow_blank=True
        )
        yield TextField(placeholder="folder", id="f-folder")
        yield TextField(placeholder="camera", id="f-camera")
        yield TextField(placeholder="place", id="f-place")
        yield Checkbox("online only", id="f-online")

    def set_roots(self, roots: list[tuple[str, int]]) -> None:
        """Refresh the root choices (a root added while the UI runs), keeping the chosen one."""
        if roots == self._roots:
            return
        self._roots = roots
        select = self.query_one("#f-root", Select)
        keep = None if select.is_blank() else select.value
        select.set_options([(label, str(rid)) for label, rid in roots])
        if keep in {str(rid) for _, rid in roots}:
            select.value = keep

    def read(self) -> Filters | None:
        """The filters as the widgets hold them now, or None while a date is not valid."""
        try:
            after = parse_date(self.query_one("#f-after", Input).value)
            before = parse_date(self.query_one("#f-before", Input).value)
        except ValueError:
            return None
        select = self.query_one("#f-root", Select)
        return Filters(
            after=after,
            before=before,
            root=None if select.is_blank() else str(select.value),
            folder=self.query_one("#f-folder", Input).value.strip() or None,
            camera=self.query_one("#f-camera", Input).value.strip() or None,
            place=self.query_one("#f-place", Input).value.strip() or None,
            online_only=self.query_one("#f-online", Checkbox).value,
        )

    def _changed(self) -> None:
        filters = self.read()
        if filters is not None and filters != self.filters:
            self.filters = filters
            self.post_message(self.Changed(filters))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._changed()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._changed()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._changed()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._changed()
