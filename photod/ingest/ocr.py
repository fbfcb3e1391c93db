"""Text in photos: the words on a sign, a menu, a receipt or a screenshot, read in Chinese and English.

The engine is RapidOCR's PP-OCRv6 (small detection and recognition models, Chinese and English in one
recogniser), which ships its ONNX models inside its wheel and runs them on ONNX Runtime, as photod's image
model does: nothing is downloaded, ever (the model files are passed by path; naming a model by version or
language instead would make RapidOCR fetch it). The detector is photod's own int8 copy of RapidOCR's
(ocrmodels/, built by scripts/build_ocr_det.py: static quantization calibrated on photos), about 2.5 times
as fast, since detection is what every photo pays. It is the `ocr` extra, since it brings OpenCV (about 80 MB).

Most photos hold no text, so the cost that matters is the cost of finding that out. Detection runs once,
on a small copy (longer side FIRST_LOOK_SIDE, more for a strip); a photo where it finds no region is done.
Each region it finds is cut from the large copy (longer side OCR_SIDE) and recognised there, at the
resolution small text needs. The angle classifier is left out: it turns lines upside down back up, which
photos (upright after EXIF) almost never need. Measured on the same photos (benchmarks/bench_ocr.py), this
is several times faster than RapidOCR's default pipeline, which detects at full size, and reads as much.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photod.errors import OcrError

if TYPE_CHECKING:  # numpy and the engine load with the reader: `photod status` imports this module too
    import numpy as np
    from PIL import Image

log = logging.getLogger(__name__)

# Longer side of the copy text is read from. Text 2 % of a 12-MP photo's height is 24 pixels tall here,
# which PP-OCR's recogniser (48-pixel lines) reads; small Chinese characters lose strokes much below that.
OCR_SIDE = 1600
# Longer side of the one detection. Measured on the benchmark's mix (benchmarks/bench_ocr.py, 40 12-MP
# photos, 12 with text at 2-8 % of their height): 480 pixels read 9 of the 12 in 227 ms a photo, 560 read
# 10 (as many as RapidOCR's default pipeline at 2,221 ms) in 281 ms, 640 read 10 in 322 ms.
FIRST_LOOK_SIDE = 560
# Shorter side the first look keeps at least (or the image's own, if less). A strip's line (a banner, a
# screenshot of one line, a narrow column) is most of its short side; scaled by the long side alone a
# 1167 x 30 strip came out under the network's 32-pixel step and was never looked at. Only shapes longer
# than FIRST_LOOK_SIDE / FIRST_LOOK_SHORT (4.4 : 1) are affected, photos and screenshots are not, and the
# look stays within OCR_SIDE x FIRST_LOOK_SHORT pixels, less than a 4:3 photo's.
FIRST_LOOK_SHORT = 128
FIRST_LOOK_BOX_THRESH = 0.5  # RapidOCR's own; 0.3 found no more text at 3 % and cost 25 % more
FIRST_LOOK_UNCLIP = 2.0  # regions grown more than RapidOCR's 1.6: a crop cut through a character misreads
MAX_LINES = 200  # lines recognised per photo at most: bounds the worst case (a page of small print)
# Seconds one photo's text may take before its reading is stopped (ONNX Runtime's terminate flag): a photo
# takes well under a second here; a run that does not end costs that photo its text, not the daemon a worker.
DEADLINE_SECONDS = 30.0
MIN_SCORE = 0.5  # recognition confidence below which a line is noise
# A line of one or two characters needs more. On texture, fur and foliage the detector may mark a region as
# large as the photo, and the recogniser names one glyph in it (人 on a black cat at 0.75, 水 at 0.52, 华 on
# a tree at 0.60); a single character matches common queries (人, 水) and would exclude the photo from `-人`.
# Measured on the 128 sample photos of ../shared/photos read as the daemon reads them: 15 such lines, in 12
# photos, scored 0.52 to 0.95, all on things that are not text but perhaps a chart's "12" (0.74); one more
# scored 0.976 (如, in a row of trees); the real ones (the digits of the orientation samples, a chart's x and
# y, IG) 0.97 to 1.0. None of the 80 rendered phrases of tests/test_ocr.py came out as a short line, so
# recall by size is unchanged.
SHORT_LINE = 2
SHORT_LINE_MIN_SCORE = 0.95
REC_HEIGHT = 48  # the recogniser's input height (PP-OCR's rec_img_shape)
MODELS = {"det_fp32": "PP-OCRv6_det_small.onnx", "rec": "PP-OCRv6_rec_small.onnx"}  # in rapidocr's wheel
DET_MODEL = Path(__file__).parent / "ocrmodels" / "PP-OCRv6_det_small.int8.onnx"  # photod's int8 copy
DET_MEAN = DET_STD = [0.5, 0.5, 0.5]  # the detector's input normalisation (RapidOCR's for PP-OCR): one
# value for all three channels, which detector_input relies on
# The models and sizes. FIRST_LOOK_SHORT is not in it: it changes only strips' looks (and decode's backdrop
# only light images on transparency), and a new id would read every photo again from its drive.
_READING = f"rapidocr-3.10/ppocrv6-small-det-int8/side{OCR_SIDE}-look{FIRST_LOOK_SIDE}"
ENGINE_ID = f"{_READING}/short{SHORT_LINE_MIN_SCORE}"
# Engines whose readings are this one's but for lines `kept` now refuses: their stored lines (text and score)
# are filtered in place instead of the photos being read again from their drives.
FILTERED_ENGINES = (_READING,)


def unavailable() -> str | None:
    """None when text can be read here; else why not, in one sentence."""
    if importlib.util.find_spec("rapidocr") is None:
        return "the OCR engine is not installed (pip install 'photod[ocr]')"
    missing = [name for name in MODELS.values() if not (_model_dir() / name).is_file()]
    if missing:
        return f"the OCR models {', '.join(missing)} are missing from rapidocr (reinstall photod[ocr])"
    if not DET_MODEL.is_file():
        return f"photod's text detector {DET_MODEL} is missing (reinstall photod)"
    return None


def _model_dir() -> Path:
    spec = importlib.util.find_spec("rapidocr")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@dataclass(frozen=True)
class TextLine:
    text: str
    score: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the pixels of the image read


@dataclass(frozen=True)
class PhotoText:
    engine: str
    lines: tuple[TextLine, ...] = ()

    @property
    def text(self) -> str:
        """The lines in reading order (top to bottom, left to right), one a line."""
        return "\n".join(line.text for line in self.lines)


class TextReader:
    """Owns the OCR models' ONNX Runtime sessions: loaded on first use, released by close().

    `read` may be called from several decode threads at once: ONNX Runtime sessions run concurrently, the
    detector and recogniser keep no per-call state that matters (each call passes its own image), and
    loading is done once under a lock.
    """

    def __init__(self, threads: int = 1, deadline: float = DEADLINE_SECONDS):
        self.threads = threads
        self.deadline = deadline
        self._models: tuple[Any, Any, Any] | None = None  # detector, its first-look post-processing, recogniser
        self._lock = threading.Lock()
        self._used = 0.0  # time.monotonic() of the last read

    def read(self, image: Image.Image) -> PhotoText:
        """The text in an upright RGB image whose longer side is at most OCR_SIDE (larger is scaled down)."""
        pixels = _bgr(image)
        if min(pixels.shape[:2]) < 8:
            return PhotoText(ENGINE_ID)
        _DEADLINE.at = time.monotonic() + self.deadline
        try:
            detector, regions, recogniser = self._load()
            boxes = self._find_regions(detector, regions, pixels)
            if not len(boxes):
                return PhotoText(ENGINE_ID)
            return PhotoText(ENGINE_ID, _recognise(recogniser, pixels, boxes))
        except OcrError:
            raise
        except Exception as exc:  # an engine failure on one image is that image's, never the daemon's
            if time.monotonic() >= _DEADLINE.at:
                raise OcrError(f"reading the text took longer than {self.deadline:g} s and was stopped") from None
            raise OcrError(f"the OCR engine failed: {type(exc).__name__}: {exc}") from None
        finally:
            _DEADLINE.at = None

    def close(self) -> None:
        with self._lock:
            self._models = None

    def release_if_idle(self, seconds: float) -> bool:
        """Let go of the models when nothing was read for `seconds` (the next read loads them again, in about
        a second): the daemon spends long stretches only encoding, and they hold about 100 MB."""
        with self._lock:
            if self._models is None or time.monotonic() - self._used < seconds:
                return False
            self._models = None
        log.debug("OCR models released after %.0f s unused", seconds)
        return True

    def _load(self) -> tuple[Any, Any, Any]:
        with self._lock:
            self._used = time.monotonic()
            if self._models is None:
                self._models = _open_models(self.threads)
            return self._models

    @staticmethod
    def _find_regions(detector: Any, regions: Any, pixels: np.ndarray) -> np.ndarray:
        """Text regions found on a small copy, as quadrilaterals in `pixels`' coordinates, in reading order.

        The first look is the only detection: a region it finds is cut from the large copy for the
        recogniser, so a photo with text costs one small detection plus its lines, and one without text
        the small detection alone."""
        import numpy as np

        batch = detector_input(pixels)
        if batch is None:
            return np.zeros((0, 4, 2), dtype=np.float32)
        boxes, _scores = regions(detector.session(batch), pixels.shape[:2])
        if not len(boxes):
            return np.zeros((0, 4, 2), dtype=np.float32)
        return detector.sorted_boxes(np.asarray(boxes, dtype=np.float32))[:MAX_LINES]


def _recognise(recogniser: Any, pixels: np.ndarray, boxes: np.ndarray) -> tuple[TextLine, ...]:
    from rapidocr.ch_ppocr_rec.typings import TextRecInput
    from rapidocr.utils.process_img import get_rotate_crop_image

    crops = [_fit_for_recognition(get_rotate_crop_image(pixels, box.copy())) for box in boxes]
    result = recogniser(TextRecInput(img=crops))
    lines = []
    for text, score, box in zip(result.txts or (), result.scores or (), boxes):
        text = " ".join(str(text).split())
        if kept(text, score):
            lines.append(
                TextLine(
                    text,
                    float(score),
                    (int(box[:, 0].min()), int(box[:, 1].min()), int(box[:, 0].max()), int(box[:, 1].max())),
                )
            )
    return tuple(lines)


def kept(text: str, score: float) -> bool:
    """Whether a recognised line is text rather than noise (see SHORT_LINE_MIN_SCORE)."""
    return bool(text) and score >= (SHORT_LINE_MIN_SCORE if len(text) <= SHORT_LINE else MIN_SCORE)


def _fit_for_recognition(crop: np.ndarray) -> np.ndarray:
    """A line taller than twice the recogniser's input height, shrunk by area averaging first: the
    recogniser's own resize interpolates, and on a large sign's 200-pixel line that drops strokes (鲜 read
    as 鮮, 出口 missed)."""
    import cv2

    height, width = crop.shape[:2]
    if height <= 2 * REC_HEIGHT:
        return crop
    scale = 2 * REC_HEIGHT / height
    return cv2.resize(crop, (max(1, round(width * scale)), 2 * REC_HEIGHT), interpolation=cv2.INTER_AREA)


def _open_models(threads: int) -> tuple[Any, Any, Any]:
    """RapidOCR's detector and recogniser on photod's thread budget, and the first look's post-processing."""
    try:
        from rapidocr import RapidOCR
        from rapidocr.ch_ppocr_det.utils import DBPostProcess
    except ImportError as exc:
        raise OcrError(f"the OCR engine cannot be loaded: {exc}", "pip install 'photod[ocr]'") from None
    models = _model_dir()
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    engine = RapidOCR(
        params={
            "Global.log_level": "warning",
            "Det.model_path": str(DET_MODEL),
            "Rec.model_path": str(models / MODELS["rec"]),
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    regions = DBPostProcess(
        thresh=0.3,
        box_thresh=FIRST_LOOK_BOX_THRESH,
        max_candidates=MAX_LINES,
        unclip_ratio=FIRST_LOOK_UNCLIP,
        use_dilation=True,
        score_mode="fast",
    )
    detector, recogniser = engine._load_det_model(), engine._load_rec_model()
    # RapidOCR's sessions keep their idle threads spinning, and a spinning detector pool took a core from
    # the recogniser's run after it (and from the other decode worker): recognition ran 1.5 times as long on
    # two threads as on one. Sessions with photod's options (those of its image model) replace them.
    for model, path in ((detector, DET_MODEL), (recogniser, models / MODELS["rec"])):
        model.session.session = _Stoppable(_session(path, threads))
    return detector, regions, recogniser


def _session(path: Path, threads: int) -> Any:
    from photod.errors import ModelError
    from photod.model.encoder import open_session

    try:
        return open_session(path, threads, arena=False)
    except ModelError as exc:  # its hint is about image-model bundles
        raise OcrError(exc.message, "reinstall photod[ocr]") from None


class _Deadline(threading.local):
    at: float | None = None  # time.monotonic() by which this thread's read must end; None: no read running


_DEADLINE = _Deadline()


class _Stoppable:
    """An ONNX Runtime session whose runs stop at the reading thread's deadline: a timer sets the run's
    terminate flag, and ONNX Runtime ends the run with an error at its next check (between operators)."""

    def __init__(self, session: Any):
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def run(self, output_names: Any, feeds: Any, run_options: Any = None) -> Any:
        import onnxruntime as ort

        left = None if _DEADLINE.at is None else _DEADLINE.at - time.monotonic()
        if left is not None and left <= 0:
            raise OcrError("the deadline for reading this photo's text has passed")
        options = run_options or ort.RunOptions()
        timer = None if left is None else threading.Timer(left, setattr, (options, "terminate", True))
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            return self._session.run(output_names, feeds, options)
        finally:
            if timer is not None:
                timer.cancel()


def first_look_side(height: int, width: int) -> int:
    """The longer side of the first look of a `height` x `width` image: FIRST_LOOK_SIDE, or more for a strip,
    so that its shorter side stays FIRST_LOOK_SHORT; never more than the image's own."""
    long, short = max(height, width), min(height, width)
    return min(long, max(FIRST_LOOK_SIDE, -(-long * FIRST_LOOK_SHORT // max(short, 1))))


def detector_input(pixels: np.ndarray) -> np.ndarray | None:
    """The first look's input, as RapidOCR's DetPreProcess makes it with first_look_side as its limit:
    `pixels` scaled so that its longer side is that (never enlarged), each side rounded to a multiple of 32
    as the network needs, normalised to [-1, 1], NCHW. Done here in float32: DetPreProcess computes in
    float64, which cost more than a tenth of a photo's reading. None for an image too small to scale."""
    import cv2
    import numpy as np

    height, width = pixels.shape[:2]
    ratio = min(1.0, first_look_side(height, width) / max(height, width))
    size = tuple(int(round(int(side * ratio) / 32) * 32) for side in (width, height))
    if min(size) <= 0:
        return None
    batch = cv2.resize(pixels, size).astype(np.float32)
    batch *= 1 / (255 * DET_STD[0])
    batch -= DET_MEAN[0] / DET_STD[0]
    return np.ascontiguousarray(batch.transpose(2, 0, 1)[np.newaxis])


def _bgr(image: Image.Image) -> np.ndarray:
    """The image as the engine takes it (BGR, uint8), no larger than OCR_SIDE."""
    import cv2
    import numpy as np
    from PIL import Image as PILImage

    if max(image.size) > OCR_SIDE:
        scale = OCR_SIDE / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), PILImage.Resampling.BILINEAR
        )
    if image.mode != "RGB":
        image = image.convert("RGB")
    # OpenCV swaps the channels about fifty times as fast as numpy's reversed view copied.
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
