"""Every error photod raises on purpose.

Each carries a message that names the file or value at fault and, where there is one, a hint saying what
to do. The CLI and TUI turn these into one friendly line; anything else is a bug and gets a traceback.
"""

from __future__ import annotations


class PhotodError(Exception):
    """Base for every domain error. `hint` says what the user can do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(PhotodError):
    """The configuration file or an override is wrong."""

    exit_code = 2


class CatalogError(PhotodError):
    """The SQLite catalog cannot be opened or migrated."""


class RootError(PhotodError):
    """A root (watched folder) is missing, unknown, or not usable."""


class DecodeError(PhotodError):
    """A file could not be decoded as a photo. Costs one failed row, never the daemon."""


class StageError(PhotodError):
    """The stage (LMDB of small JPEGs) cannot be written or read."""


class ModelError(PhotodError):
    """A model bundle is missing, invalid, or cannot be imported."""


class NoModelError(ModelError):
    """Search by meaning or by example was asked for but no model is installed."""

    # What a search looks through without a model, said in the same words by the CLI, the TUI and doctor.
    SEARCHED_WITHOUT = "captions, text in photos, places and file names"

    def __init__(self) -> None:
        super().__init__(
            "no model is installed, so photos cannot be found by what they show",
            "install one with `photod model import FOLDER` (Chinese-CLIP's ONNX files), "
            "`photod model pull ViT-B-16` (needs network and torch) or `photod model import CHECKPOINT.pt`",
        )


class VectorIndexError(PhotodError):
    """The vector index cannot be loaded or saved."""


class LabelError(PhotodError):
    """A caption or mark cannot be written (empty, for no photo), or a label file is malformed."""


class DiskFullError(PhotodError):
    """Writing failed because the disk is full; nothing already written is lost."""


class FinetuneError(PhotodError):
    """Fine-tuning cannot run: too few labels, no base checkpoint, a dataset file that is not one."""


class AlreadyRunningError(PhotodError):
    """Another daemon holds the data dir."""

    def __init__(self, data_dir: object, pid: str):
        super().__init__(
            f"another photod daemon (pid {pid}) is already running on {data_dir}",
            "stop it first (`systemctl --user stop photod`, or `systemctl stop photod` for a system service), "
            "or give this one its own data dir with PHOTOD_DATA_DIR; `photod scan` and every other command "
            "work beside a running daemon",
        )


class OcrError(PhotodError):
    """Text in a photo could not be read (the OCR extra is missing, or its models failed on one image).
    Costs that photo its text, never its other work."""


class PlaceError(PhotodError):
    """The offline place data cannot be loaded (missing or damaged package data)."""
