"""The terminal UI (`photod tui`): search, photo detail, captions and status, in Textual."""
