"""Decoding real and generated photos: modes, orientation metadata, EXIF, size, and broken input."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from photod.errors import DecodeError
from photod.ingest.decode import content_hash, decode_photo
from photod.ingest.exif import parse_exif_date, read_exif
from tests.support.faultkit import png_claiming


def _open(jpeg: bytes) -> Image.Image:
    img = Image.open(BytesIO(jpeg))
    img.load()
    return img


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


# ---- colour modes -------------------------------------------------------------------------------------


def test_cmyk_jpeg_comes_out_rgb_with_the_right_colour():
    data = _encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=95)
    out = decode_photo(data, "cmyk.jpg", size=32)
    img = _open(out.jpeg)
    assert img.mode == "RGB"
    r, g, b = img.getpixel((10, 10))
    assert r > 230 and g < 30 and b < 30  # pure red in CMYK is red in RGB


@pytest.mark.parametrize("mode,colour", [("CMYK", (0, 255, 255, 0)), ("L", 200)])
def test_draft_on_cmyk_and_grey_jpegs(mode, colour):
    data = _encode(Image.new(mode, (1600, 1200), colour), "JPEG", quality=95)
    out = decode_photo(data, "big.jpg", size=384, draft=True)
    img = _open(out.jpeg)
    assert img.mode == "RGB" and img.size == (512, 384)
    expected = (255, 0, 0) if mode == "CMYK" else (200, 200, 200)
    assert all(abs(a - b) < 25 for a, b in zip(img.getpixel((100, 100)), expected))


def test_16bit_png_is_scaled_not_clipped():
    arr = np.full((40, 60), 40000, dtype=np.uint16)
    data = _encode(Image.fromarray(arr), "PNG")
    assert Image.open(BytesIO(data)).mode in ("I;16", "I")  # really a 16-bit file
    img = _open(decode_photo(data, "deep.png", size=32).jpeg)
    assert img.mode == "RGB"
    value = img.getpixel((5, 5))[0]
    assert abs(value - 40000 // 257) <= 3, value  # naive conversion would give 255


def test_palette_png_and_gif_keep_their_colours():
    rgb = Image.new("RGB", (64, 64), (0, 0, 255))
    rgb.paste((0, 200, 0), (0, 0, 32, 64))
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    for fmt in ("PNG", "GIF"):
        img = _open(decode_photo(_encode(pal, fmt), f"pal.{fmt.lower()}", size=64).jpeg)
        assert img.mode == "RGB"
        left, right = img.getpixel((8, 32)), img.getpixel((56, 32))
        assert left[1] > 170 and left[2] < 40, (fmt, left)
        assert right[2] > 220 and right[1] < 40, (fmt, right)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_onto_white(mode):
    img = Image.new("RGBA", (64, 64), (200, 0, 0, 255))
    img.paste((200, 0, 0, 0), (32, 0, 64, 64))  # right half fully transparent
    img = img.convert(mode)
    out = _open(decode_photo(_encode(img, "PNG"), "alpha.png", size=64).jpeg)
    assert out.mode == "RGB"
    assert min(out.getpixel((56, 32))) > 245  # transparent -> white, not black
    assert max(out.getpixel((8, 32))) < 230  # the opaque half keeps its colour


def _light_on_transparency(mode: str) -> bytes:
    if mode == "P":  # a palette whose first entry is transparent
        img = Image.new("P", (64, 64), 0)
        img.putpalette([0, 0, 0, 250, 250, 250] + [0] * 762)
        img.paste(1, (0, 0, 24, 64))
        return _encode(img, "PNG", transparency=0)
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # what transparent pixels hide is black, as is usual
    img.paste((250, 250, 250, 255), (0, 0, 24, 64))
    return _encode(img.convert(mode), "PNG")


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_light_content_on_transparency_is_shown_on_black(mode):
    """White text on a transparent sticker, logo or exported slide: on white it would vanish from the stage
    (the model and the thumbnail) and from the copy text is read in."""
    decoded = decode_photo(_light_on_transparency(mode), "sticker.png", size=64, text_side=64)
    for out in (_open(decoded.jpeg), decoded.text_image):
        assert out.mode == "RGB"
        assert max(out.getpixel((48, 32))) < 10  # transparent -> black
        assert min(out.getpixel((8, 32))) > 240  # the white stays white


def test_thin_light_strokes_choose_the_backdrop_too():
    """Strokes one pixel wide, in an image large enough to be sampled: the choice follows the opaque
    pixels, not the colour transparent ones hide."""
    img = Image.new("RGBA", (3000, 2000), (0, 0, 0, 0))
    for x in range(0, 3000, 7):
        img.paste((255, 255, 255, 255), (x, 0, x + 1, 2000))
    out = _open(decode_photo(_encode(img, "PNG"), "lines.png", size=200).jpeg)
    assert max(out.getpixel((3, 100))) < 120  # between the strokes: dark, so they stay visible


def test_a_wholly_transparent_image_is_white():
    img = Image.new("RGBA", (32, 32), (255, 255, 255, 0))
    out = _open(decode_photo(_encode(img, "PNG"), "empty.png", size=32).jpeg)
    assert min(out.getpixel((16, 16))) > 245


def test_transparent_palette_gif_is_white_behind():
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (0, 0, 16, 32))
    data = _encode(img, "GIF", transparency=0)
    out = _open(decode_photo(data, "t.gif", size=32).jpeg)
    assert min(out.getpixel((28, 16))) > 245
    r, g, b = out.getpixel((4, 16))
    assert r > 230 and g < 30


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (48, 48), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(BytesIO(data)).n_frames == 3
    out = decode_photo(data, "anim.gif", size=48)
    r, g, b = _open(out.jpeg).getpixel((24, 24))
    assert r > 230 and g < 30 and b < 30
    assert out.meta.format == "GIF"


@pytest.mark.parametrize(
    "fmt,mode", [("BMP", "RGB"), ("WEBP", "RGB"), ("TIFF", "RGB"), ("PNG", "L"), ("PNG", "1"), ("TIFF", "CMYK")]
)
def test_other_formats_and_modes_come_out_rgb(fmt, mode):
    src = Image.new("RGB", (80, 60), (30, 90, 160)).convert(mode)
    out = decode_photo(_encode(src, fmt), f"x.{fmt.lower()}", size=60)
    img = _open(out.jpeg)
    assert img.mode == "RGB" and img.size == (80, 60)
    assert out.meta.format == fmt


# ---- size ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("draft", [True, False])
def test_downscale_keeps_shorter_side_and_original_size_in_meta(draft):
    src = Image.effect_mandelbrot((3000, 2000), (-2, -1, 1, 1), 50).convert("RGB")
    out = decode_photo(_encode(src, "JPEG"), "big.jpg", size=384, draft=draft)
    assert _open(out.jpeg).size == (576, 384)
    assert (out.meta.width, out.meta.height) == (3000, 2000)


def test_never_upscales():
    out = decode_photo(_encode(Image.new("RGB", (120, 90), "gray"), "PNG"), "small.png", size=384)
    assert _open(out.jpeg).size == (120, 90)


def test_draft_output_is_close_to_full_decode():
    src = Image.effect_mandelbrot((2400, 1600), (-2, -1, 1, 1), 60).convert("RGB")
    data = _encode(src, "JPEG", quality=92)
    a = np.asarray(_open(decode_photo(data, "a.jpg", draft=True).jpeg), dtype=np.float32)
    b = np.asarray(_open(decode_photo(data, "a.jpg", draft=False).jpeg), dtype=np.float32)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 8


def test_quality_is_used():
    src = Image.effect_mandelbrot((800, 600), (-2, -1, 1, 1), 60).convert("RGB")
    data = _encode(src, "PNG")
    assert len(decode_photo(data, "q.png", quality=95).jpeg) > len(decode_photo(data, "q.png", quality=40).jpeg)


# ---- EXIF ---------------------------------------------------------------------------------------------


def test_canon_40d_date_and_camera(samples):
    path = samples / "jpg" / "Canon_40D.jpg"
    raw = Image.open(path)._getexif()  # Pillow's flat legacy view, read separately from photod's code
    assert raw[36867] == "2008:05:30 15:56:01" and raw[272] == "Canon EOS 40D"
    meta = decode_photo(path.read_bytes(), path.name).meta
    assert meta.taken_at == "2008-05-30T15:56:01"
    assert meta.camera_make == "Canon"
    assert meta.camera_model == "Canon EOS 40D"
    assert meta.orientation == 1
    assert (meta.width, meta.height, meta.format) == (100, 68, "JPEG")
    assert meta.gps_lat is None and meta.gps_lon is None


def _dms(value, ref, negative):
    d, m, s = (float(x) for x in value)
    return (-1 if ref == negative else 1) * (d + m / 60 + s / 3600)


def test_gps_photos(samples):
    paths = sorted((samples / "jpg" / "gps").glob("*.jpg"))
    assert len(paths) >= 5
    for path in paths:
        gps = Image.open(path)._getexif()[34853]
        lat, lon = _dms(gps[2], gps[1], "S"), _dms(gps[4], gps[3], "W")
        meta = decode_photo(path.read_bytes(), path.name).meta
        assert meta.gps_lat == pytest.approx(lat, abs=1e-6), path.name
        assert meta.gps_lon == pytest.approx(lon, abs=1e-6), path.name
        assert 43 < meta.gps_lat < 44 and 11 < meta.gps_lon < 12  # the Nikon walk in Tuscany
        assert meta.camera_model == "COOLPIX P6000"


def test_southern_and_western_gps_are_negative():
    img = Image.new("RGB", (8, 8))
    exif = img.getexif()
    gps = exif.get_ifd(0x8825)
    gps.update({1: "S", 2: (33.0, 51.0, 36.0), 3: "W", 4: (151.0, 12.0, 0.0)})
    out = decode_photo(_encode(img, "JPEG", exif=exif), "sydney-ish.jpg")
    assert out.meta.gps_lat == pytest.approx(-(33 + 51 / 60 + 36 / 3600), abs=1e-6)
    assert out.meta.gps_lon == pytest.approx(-(151 + 12 / 60), abs=1e-6)


def test_bad_exif_values_become_none_not_errors():
    img = Image.new("RGB", (16, 16))
    exif = img.getexif()
    exif[0x0132] = "0000:00:00 00:00:00"  # DateTime
    exif[0x010F] = "  Canon\x00\x00  "  # Make, padded as cameras do
    exif[0x0112] = 9  # Orientation out of range
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (95.0, 0.0, 0.0)})  # latitude beyond the pole
    meta = decode_photo(_encode(img, "JPEG", exif=exif), "junk.jpg").meta
    assert meta.taken_at is None
    assert meta.camera_make == "Canon"
    assert meta.orientation is None
    assert meta.gps_lat is None and meta.gps_lon is None


def test_date_falls_back_from_original_to_digitized_to_datetime():
    img = Image.new("RGB", (16, 16))
    exif = img.getexif()
    exif[0x0132] = "2011:02:03 04:05:06"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "1800:01:01 00:00:00"  # absurd DateTimeOriginal
    assert read_exif(Image.open(BytesIO(_encode(img, "JPEG", exif=exif))))["taken_at"] == "2011-02-03T04:05:06"
    sub[0x9004] = "2010:01:01 10:00:00"
    assert read_exif(Image.open(BytesIO(_encode(img, "JPEG", exif=exif))))["taken_at"] == "2010-01-01T10:00:00"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2008:05:30 15:56:01", "2008-05-30T15:56:01"),
        ("2008:05:30 15:56:01\x00", "2008-05-30T15:56:01"),
        (b"2019-12-31 23:59:59", "2019-12-31T23:59:59"),
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        ("2008:13:30 15:56:01", None),
        ("1899:12:31 23:59:59", None),
        ("2101:01:01 00:00:00", None),
        ("garbage", None),
        (12345, None),
    ],
)
def test_parse_exif_date(text, expected):
    assert parse_exif_date(text) == expected


def test_read_exif_on_image_without_exif():
    meta = read_exif(Image.new("RGB", (4, 4)))
    assert set(meta) == {"taken_at", "camera_make", "camera_model", "lens", "orientation", "gps_lat", "gps_lon"}
    assert all(v is None for v in meta.values())


def test_original_size_is_upright(samples):
    path = samples / "jpg" / "orientation" / "landscape_6.jpg"
    assert Image.open(path).size == (450, 600)  # stored sideways
    out = decode_photo(path.read_bytes(), path.name)
    assert (out.meta.width, out.meta.height, out.meta.orientation) == (600, 450, 6)
    assert _open(out.jpeg).size == (512, 384)


# ---- broken input ---------------------------------------------------------------------------------------


def test_empty_file():
    with pytest.raises(DecodeError, match=r"IMG_1\.jpg: empty file \(0 bytes\)"):
        decode_photo(b"", "IMG_1.jpg")


def test_text_file_named_jpg():
    with pytest.raises(DecodeError, match=r"notes\.jpg: not an image Pillow can read \(text file"):
        decode_photo(b"shopping list: milk, eggs\n" * 20, "notes.jpg")


@pytest.mark.parametrize(
    "sample,draft", [("Canon_PowerShot_S40.jpg", True), ("mobile/jolla.jpg", True), ("mobile/jolla.jpg", False)]
)
def test_truncated_jpeg(samples, sample, draft):
    data = (samples / "jpg" / sample).read_bytes()
    with pytest.raises(DecodeError, match=r"half\.jpg: truncated image data"):
        decode_photo(data[: len(data) * 3 // 4], "half.jpg", draft=draft)


def test_decompression_bomb_header_is_refused():
    with pytest.raises(DecodeError, match=r"bomb\.png: 10,000,000,000 pixels exceeds the decompression-bomb"):
        decode_photo(png_claiming(100_000, 100_000), "bomb.png")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_between_warning_and_error_limit_is_refused():
    limit = Image.MAX_IMAGE_PIXELS
    side = int(limit**0.5) + 100  # above the warning level, below Pillow's hard error at twice it
    with pytest.raises(DecodeError, match=rf"{side}x{side} pixels exceeds the decompression-bomb limit"):
        decode_photo(png_claiming(side, side), "large.png")


def test_content_hash():
    h = content_hash(b"photo bytes")
    assert len(h) == 64 and int(h, 16) >= 0
    assert h == content_hash(b"photo bytes")
    assert h != content_hash(b"photo bytez")


def test_formats_outside_photo_formats_are_refused():
    # Pillow reads PPM, but nothing in a photo library should be decoded by an arbitrary plugin.
    with pytest.raises(DecodeError, match=r"odd\.jpg: not an image Pillow can read"):
        decode_photo(_encode(Image.new("RGB", (8, 8)), "PPM"), "odd.jpg")
