"""photod: a personal photo-library daemon with Chinese text and image search."""

__version__ = "0.1.0"
