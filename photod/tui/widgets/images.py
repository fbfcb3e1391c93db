"""Pictures in the terminal: which textual-image renderer to use, and how big a picture may be drawn.

textual-image picks Kitty's graphics protocol or sixel when the terminal answers for them, and half-block
cells everywhere else (plain SSH included). It asks the terminal at import time, before Textual takes the
screen over, which is why this module imports it at the top. Tests ask for half-blocks by name, so what
they render does not depend on the terminal running them.
"""

from __future__ import annotations

from PIL import Image as PILImage
from textual_image._terminal import get_cell_size
from textual_image.widget import BaseImage, HalfcellImage, UnicodeImage
from textual_image.widget import Image as AutoImage

IMAGE_MODES: tuple[str, ...] = ("auto", "halfcell", "unicode", "none")

_CLASSES: dict[str, type[BaseImage] | None] = {
    "auto": AutoImage,
    "halfcell": HalfcellImage,
    "unicode": UnicodeImage,
    "none": None,
}

# The cell shape tests assume, so that layouts do not depend on the font of the terminal running them.
_FIXED_CELL = (10, 20)


def image_class(mode: str) -> type[BaseImage] | None:
    """The textual-image widget class for a mode, or None for no pictures at all."""
    try:
        return _CLASSES[mode]
    except KeyError:
        raise ValueError(f"image mode {mode!r} is not one of {', '.join(IMAGE_MODES)}") from None


def cell_shape(mode: str) -> tuple[int, int]:
    """Pixel width and height of one terminal cell, as the renderer will assume it."""
    if mode == "auto":
        size = get_cell_size()
        return size.width, size.height
    return _FIXED_CELL


def fit_cells(image: PILImage.Image, max_w: int, max_h: int, cell: tuple[int, int]) -> tuple[int, int]:
    """The largest (columns, rows) that shows `image` whole, undistorted, within max_w x max_h cells."""
    if image.width <= 0 or image.height <= 0 or max_w <= 0 or max_h <= 0:
        return 0, 0
    ratio = (image.width / image.height) * (cell[1] / cell[0])  # columns per row for this picture
    cols = max_w
    rows = round(cols / ratio)
    if rows > max_h:
        rows = max_h
        cols = max(1, round(rows * ratio))
    return max(1, cols), max(1, rows)
