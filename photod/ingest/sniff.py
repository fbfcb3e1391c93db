"""What a file is, from its first bytes: a still Pillow reads, a camera RAW for LibRaw, or a video for FFmpeg.

The extension only chooses which files are looked at (the roots' include globs) and, among TIFF-based files,
whether one is a RAW (DNG, NEF, ARW, CR2... are all TIFF inside). Everything else is read from the content,
so a JPEG saved as `.png` is read as the JPEG it is and a `.mov` holding a HEIC still is a still.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["image", "raw", "video"]

# The RAW formats LibRaw reads that a camera writes (issue-sized list: the common ones of each maker).
RAW_EXTENSIONS = frozenset(
    {
        "dng",
        "cr2",
        "cr3",
        "crw",
        "nef",
        "nrw",
        "arw",
        "srf",
        "sr2",
        "raf",
        "orf",
        "rw2",
        "pef",
        "srw",
        "x3f",
        "3fr",
        "iiq",
        "erf",
        "mef",
        "mos",
        "mrw",
        "dcr",
        "kdc",
    }
)
VIDEO_EXTENSIONS = frozenset({"mp4", "mov", "m4v", "3gp", "3g2", "mkv", "avi", "webm", "mts", "m2ts"})
# Files beside photos that describe them (Lightroom/darktable XMP, Apple's edit instructions): never a photo.
SIDECAR_EXTENSIONS = frozenset({"xmp", "aae"})

# ISO base media (MP4, MOV, HEIF, AVIF, CR3) brands that mean a still image or an image collection.
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis", b"mif2", b"jxl "}
)
_TIFF = (b"II*\x00", b"MM\x00*", b"IIRO", b"IIU\x00", b"MMOR")  # TIFF, and Olympus/Panasonic variants


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def sniff(head: bytes, name: str) -> Kind:
    """The kind of a file from its first 64 bytes (or more) and, for TIFF-based files, its extension.
    Anything not recognised is `image`: Pillow then says precisely what it is not."""
    ext = extension(name)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"crx ":
            return "raw"  # Canon CR3
        brands = {head[i : i + 4] for i in range(16, min(len(head), int.from_bytes(head[:4], "big")), 4)}
        if brand in _IMAGE_BRANDS or (brands & _IMAGE_BRANDS and not brands & {b"isom", b"mp41", b"mp42", b"qt  "}):
            return "image"
        return "video"
    if head.startswith(b"\x1aE\xdf\xa3"):  # EBML: Matroska, WebM
        return "video"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if _transport_stream(head):
        return "video"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip") and ext in VIDEO_EXTENSIONS:
        return "video"  # an old QuickTime file with no ftyp box
    if head.startswith((b"FUJIFILMCCD-RAW", b"FOVb", b"\x00MRM")):
        return "raw"  # Fujifilm RAF, Sigma X3F, Minolta MRW
    if head.startswith(_TIFF) and ext in RAW_EXTENSIONS:
        return "raw"
    return "image"


def _transport_stream(head: bytes) -> bool:
    # MPEG-TS: a 0x47 sync byte every 188 bytes; M2TS (AVCHD .mts/.m2ts): every 192, after a 4-byte stamp.
    return (len(head) >= 377 and head[0] == head[188] == head[376] == 0x47) or (
        len(head) >= 389 and head[4] == head[196] == head[388] == 0x47
    )
