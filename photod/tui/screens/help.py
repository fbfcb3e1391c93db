"""`?`: every key, in one place."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]photod: find your photos by describing them[/b]

[b]Search[/b]
  type            search as you type: by meaning (海边的日落) with a model, and by the words in captions,
                  text in photos, places and file names; 2019年夏天 三亚 海边 -人, "三亚湾" (exact),
                  2:狗 (weight), like:ID; the summary line shows what was understood
  a               also the weaker matches the per-query cutoff hides (again: hide them)
  ↓ / enter       from the search box into the results
  ↑ ↓ ← →         move in the results; ↑ on the first row goes back to the search box
  enter           open the photo (double click with the mouse)
  space           select or unselect (captions go onto every selected photo)
  u               clear the selection
  c               captions of the selection, or of the photo under the cursor
  m               more like this photo (needs a model)
  r or +          right: this photo is what the query means
  w or -          wrong: it is not (both are kept as labels for `photod finetune`)
  o / y           open with the system viewer / copy the path
  / or esc        back to the search box
  F2              filters: date range, root, folder, camera, place, online only
  F3              filenames only, or by meaning
  F4              grid or list
  ctrl+r          search again now

[b]Photo[/b]
  o  view   f  open its folder   y  copy path   m  more like this   c  captions   esc  back

[b]Captions[/b]
  enter  add (or save the edit)   e  edit   d  delete   tab  switch list/input   esc  close

[b]Everywhere[/b]
  F5  status: roots, counts, what the daemon is doing, failed files
  ?  or F1  this help        ctrl+q  quit

Without a model photod searches filenames. Install one with
`photod model pull ViT-B-16` or `photod model import CHECKPOINT.pt --arch ViT-B-16`.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP, id="help-text")
