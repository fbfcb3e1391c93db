"""Text in photos, read by the real PP-OCR models: phrases rendered onto the real sample photos at several
sizes are found by a word of theirs, the screenshot by the words on it, text on transparency in white and
in black, strips a line high or a word wide, and odd images cost nothing but their text."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from photod.errors import OcrError
from photod.ingest import ocr
from photod.ingest.decode import decode_photo
from tests.support.rendered_text import FONT, PHOTOS, PHRASES, as_large_photo, found, render, sample_photos

pytestmark = pytest.mark.skipif(ocr.unavailable() is not None, reason=str(ocr.unavailable()))

SIZES = (0.02, 0.03, 0.05, 0.08)  # character height as a share of the photo's height
PHOTO_COUNT = 20


@pytest.fixture(scope="module")
def reader():
    r = ocr.TextReader(threads=2)
    yield r
    r.close()


def _staged_copy(img: Image.Image) -> Image.Image:
    """The copy the stager hands the reader: the photo decoded as staging decodes it, OCR_SIDE long."""
    from io import BytesIO

    buf = BytesIO()
    img.save(buf, "JPEG", quality=90)
    return decode_photo(buf.getvalue(), "rendered.jpg", text_side=ocr.OCR_SIDE).text_image


def test_rendered_text_is_found_by_its_words_at_every_size(reader, capsys):
    photos = sample_photos(PHOTO_COUNT)
    assert len(photos) == PHOTO_COUNT
    recall = {}
    for share in SIZES:
        hits = 0
        for i, path in enumerate(photos):
            phrase = PHRASES[i % len(PHRASES)]
            photo = render(as_large_photo(path), phrase, share, seed=i + int(share * 1000))
            hits += found(reader.read(_staged_copy(photo)).text, phrase.word)
        recall[share] = hits / len(photos)
    with capsys.disabled():
        print(
            "\nOCR recall by text height (share of a 12-MP photo's height): "
            + ", ".join(f"{s:.0%}: {r:.2f}" for s, r in recall.items())
        )
    assert all(recall[s] >= 0.95 for s in SIZES if s >= 0.03), recall
    assert recall[0.02] >= 0.8, recall


def test_the_screenshot_is_read(reader):
    with Image.open(PHOTOS / "photoprism-samples" / "Screenshot 2019-05-21 at 10.45.52.png") as img:
        text = reader.read(img.convert("RGB")).text
    for word in ("Photos", "Search", "Newest first", "Pineapple", "Camera"):
        assert found(text, word), word


def _on_transparency(text: str, ink: tuple[int, int, int]) -> bytes:
    """A PNG of `text` in `ink` on full transparency, as a sticker, a logo or a slide exported without its
    background is: every drawn pixel `ink`, its strokes' edges only in the alpha channel (straight alpha),
    and the wholly transparent pixels hiding black, as usual."""
    from io import BytesIO

    import numpy as np

    font = ImageFont.truetype(str(FONT), 48)
    left, top, right, bottom = font.getbbox(text)
    alpha = Image.new("L", (right - left + 80, bottom - top + 80), 0)
    ImageDraw.Draw(alpha).text((40 - left, 40 - top), text, fill=255, font=font)
    a = np.asarray(alpha)
    rgba = np.zeros((*a.shape, 4), dtype=np.uint8)
    rgba[a > 0, :3] = ink
    rgba[..., 3] = a
    img = Image.fromarray(rgba, "RGBA")
    buf = BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("ink", [(255, 255, 255), (0, 0, 0)], ids=["white", "black"])
def test_text_on_transparency_is_read_in_white_and_in_black(reader, ink):
    """Transparency shown on white made white text white on white: the backdrop contrasts with the ink."""
    for phrase in PHRASES:
        copy = decode_photo(_on_transparency(phrase.text, ink), "sticker.png", text_side=ocr.OCR_SIDE).text_image
        assert found(reader.read(copy).text, phrase.word), (phrase, ink)


def _strip_of(path, width: int, height: int) -> Image.Image:
    """A `width` x `height` strip cut from a sample photo (across its middle third, or down it)."""
    big = as_large_photo(path, side=2 * max(width, height))
    x, y = (0, big.height // 3) if width > height else (big.width // 3, 0)
    return big.crop((x, y, x + width, y + height))


@pytest.mark.parametrize("height", [54, 30])
def test_a_banner_a_line_high_is_read(reader, height):
    """A 1167-pixel banner or a screenshot of one line: scaled by its long side alone to the first look, a
    30-pixel strip was never looked at and a 54-pixel one lost a phrase."""
    photos = sample_photos(PHOTO_COUNT)
    for i, path in enumerate(photos):
        phrase = PHRASES[i % len(PHRASES)]
        strip = render(_strip_of(path, 1167, height), phrase, 0.4, seed=i)
        assert found(reader.read(strip).text, phrase.word), (path.name, phrase)


WORDS = ("首页", "新闻", "体育", "财经", "娱乐", "科技", "汽车", "房产", "旅游", "美食", "教育", "健康", "游戏", "音乐")


def test_a_tall_narrow_column_is_read(reader):
    """A sidebar of a screenshot, one word a line at 12 pixels: the look keeps its width, not its length."""
    column = Image.new("RGB", (100, 1600), (245, 245, 245))
    font = ImageFont.truetype(str(FONT), 12)
    draw = ImageDraw.Draw(column)
    step = column.height // len(WORDS)
    for k, word in enumerate(WORDS):
        left, top, right, bottom = font.getbbox(word)
        draw.text(((100 - right + left) // 2 - left, k * step + step // 2 - top), word, fill=(20, 20, 20), font=font)
    text = reader.read(column).text
    assert [word for word in WORDS if not found(text, word)] == []


def test_the_first_look_keeps_a_strips_short_side_and_photos_as_they_were():
    for height, width in ((3000, 4000), (1200, 1600), (900, 1600), (1600, 738), (1600, 1200), (533, 1600)):
        assert ocr.first_look_side(height, width) == ocr.FIRST_LOOK_SIDE  # photos, screenshots, a 3:1 panorama
    for height, width in ((54, 1167), (30, 1167), (1600, 100), (300, 1600), (20, 600), (8, 1600)):
        look = ocr.first_look_side(height, width)
        short = min(height, width) * look / max(height, width)
        assert look <= max(height, width) and short >= min(height, width, ocr.FIRST_LOOK_SHORT) - 1e-9
        assert look * short <= ocr.OCR_SIDE * ocr.FIRST_LOOK_SHORT < ocr.FIRST_LOOK_SIDE**2 * 3 / 4  # < a 4:3 look


def test_photos_without_text_read_as_little_or_nothing(reader):
    lines = [len(reader.read(_staged_copy(as_large_photo(p))).lines) for p in sample_photos(PHOTO_COUNT)]
    assert sum(n == 0 for n in lines) >= 0.8 * len(lines), lines  # a stray mark on a texture may read as a letter


def test_a_glyph_named_in_fur_is_not_text(reader):
    """On the black cat the detector marks a region as large as the photo and the recogniser names one
    character in it (人, at 0.75): a line that short must be read with confidence to count."""
    data = (PHOTOS / "photoprism-samples" / "cat_black.jpg").read_bytes()
    lines = reader.read(decode_photo(data, "cat_black.jpg", text_side=ocr.OCR_SIDE).text_image).lines
    assert "人" not in [line.text for line in lines], lines
    assert not ocr.kept("人", 0.75) and ocr.kept("人", 0.99)
    assert ocr.kept("三亚湾", 0.6) and not ocr.kept("三亚湾", 0.4)
    assert not ocr.kept("", 1.0)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (1, 1)),
        Image.new("RGB", (1600, 1200)),
        Image.new("RGB", (20000, 40), "white"),
        Image.new("L", (300, 200), 128),
    ],
)
def test_odd_images_give_no_text_or_a_clear_error(reader, image):
    try:
        result = reader.read(image)
    except OcrError as exc:
        assert exc.message
        return
    assert result.engine == ocr.ENGINE_ID and result.lines == ()


def test_lines_come_with_boxes_in_the_image_read(reader):
    photo = render(as_large_photo(sample_photos(1)[0], side=1600), "欢迎光临北京饭店", 0.05, seed=3)
    result = reader.read(photo)
    [line] = [line for line in result.lines if found(line.text, "北京饭店")]
    x0, y0, x1, y1 = line.box
    assert 0 <= x0 < x1 <= photo.width and 0 <= y0 < y1 <= photo.height
    assert 0.5 <= line.score <= 1.0


def test_idle_models_are_let_go_and_come_back_on_the_next_read():
    reader = ocr.TextReader(threads=1)
    assert not reader.release_if_idle(0)  # nothing loaded yet
    photo = render(as_large_photo(sample_photos(1)[0], side=1600), "禁止吸烟", 0.06, seed=1)
    first = reader.read(photo)
    assert not reader.release_if_idle(3600) and reader._models is not None  # used just now: kept
    assert reader.release_if_idle(0) and reader._models is None
    assert reader.read(photo) == first  # loaded again, same result


def test_a_read_past_its_deadline_is_stopped_and_costs_only_the_text():
    """ONNX Runtime's terminate flag ends the run: the photo gets a clear error, the reader keeps working."""
    reader = ocr.TextReader(threads=1, deadline=0.02)
    photo = render(as_large_photo(sample_photos(1)[0], side=1600), "禁止吸烟 出口 停车场 欢迎光临", 0.05, seed=2)
    with pytest.raises(OcrError, match="longer than 0.02 s|deadline"):
        reader.read(photo)
    reader.deadline = ocr.DEADLINE_SECONDS
    assert any(found(line.text, "禁止吸烟") for line in reader.read(photo).lines)


@pytest.mark.parametrize(
    "shape", [(1232, 1600, 3), (1600, 900, 3), (20, 600, 3), (100, 50, 3), (7, 30, 3), (54, 1167, 3), (1600, 100, 3)]
)
def test_the_detector_sees_what_rapidocrs_preprocessing_makes(shape):
    """photod makes the detector's input itself (in float32, about four times as fast); it must stay what
    RapidOCR's DetPreProcess makes, with the first look's side as its limit, which the detector was
    calibrated and measured on."""
    import numpy as np
    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    pixels = np.random.default_rng(len(shape) + shape[0]).integers(0, 256, shape, dtype=np.uint8)
    ours = ocr.detector_input(pixels)
    limit = ocr.first_look_side(*shape[:2])
    theirs = DetPreProcess(limit, "max", ocr.DET_MEAN, ocr.DET_STD)(pixels)
    if theirs is None:
        assert ours is None
        return
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-5


def test_the_models_run_on_photods_own_sessions_with_idle_threads_asleep():
    """RapidOCR's sessions spin their idle threads, which took a core from the next run (the recogniser after
    the detector, the other decode worker): the reader's sessions are photod's, spinning off."""
    reader = ocr.TextReader(threads=2)
    detector, _regions, recogniser = reader._load()
    for model in (detector, recogniser):
        options = model.session.session.get_session_options()
        assert options.intra_op_num_threads == 2
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert not options.enable_cpu_mem_arena  # shapes change with every photo: an arena keeps the largest
    reader.close()
