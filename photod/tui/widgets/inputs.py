"""A text field whose own keys (ctrl+u, backspace, arrows) act in the order they were typed.

Textual runs a focused widget's non-priority bindings only once the key has bubbled back up to the app,
through every parent's message queue, while the characters typed after it are inserted at once. When keys
arrive together (an input method committing 三亚 right after ctrl+u, a paste, a slow SSH link), ctrl+u then
erases what was typed after it. Running the field's own bindings where the key lands keeps the order.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class TextField(Input):
    async def _on_key(self, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return
        await super()._on_key(event)
