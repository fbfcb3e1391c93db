"""BERT WordPiece tokenizer for Chinese-CLIP's text tower, in plain Python and NumPy.

The daemon turns a query such as "海边的日落" into the token ids the ONNX text model expects. The ids must be
exactly those Chinese-CLIP's own tokenizer produces (the model was trained on them), so every step below
follows the uncased BERT recipe Chinese-CLIP uses:

1. clean: drop NUL, U+FFFD and control/format characters; turn every whitespace character into a space;
2. put spaces around CJK ideographs, so each becomes a word of its own;
3. split on whitespace; lower-case each word, strip its accents (NFD, drop combining marks), and split
   it around punctuation;
4. cut each word into the longest vocabulary pieces from the left, later pieces prefixed "##"; a word
   with no such cut, or longer than 200 characters, becomes [UNK].

`tokenize` then frames the ids as [CLS] ids [SEP], truncated and zero-padded to the context length.
"""

from __future__ import annotations

import functools
import logging
import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from photod.errors import ModelError

log = logging.getLogger(__name__)

CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
UNK_TOKEN = "[UNK]"
DEFAULT_CONTEXT_LENGTH = 52  # every cn_clip model is trained with 52 tokens
# Words longer than this are not split at all but become one [UNK], as in BERT.
MAX_CHARS_PER_WORD = 200
CONTINUATION_PREFIX = "##"

# The code point blocks BERT counts as CJK ideographs (unified, extensions A-E, compatibility). Later
# extensions (F, G, ...) are deliberately absent: the model was trained with exactly these.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
# Tab, newline and carriage return are control characters to Unicode, but text means them as spaces.
_SPACE_LIKE_CONTROLS = frozenset("\t\n\r")


def _is_cjk_ideograph(char: str) -> bool:
    cp = ord(char)
    return any(low <= cp <= high for low, high in _CJK_RANGES)


def _is_whitespace(char: str) -> bool:
    return char == " " or char in _SPACE_LIKE_CONTROLS or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    if char in _SPACE_LIKE_CONTROLS:
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    # Every ASCII symbol counts, including "$", "^", "`" and "+" which Unicode files under symbols.
    if char.isascii() and not char.isalnum() and char.isprintable() and char != " ":
        return True
    return unicodedata.category(char).startswith("P")


def _clean(text: str) -> str:
    """Drop characters that carry no meaning and normalise whitespace, padding ideographs with spaces."""
    out: list[str] = []
    for char in text:
        if char == "\x00" or char == "\ufffd" or _is_control(char):
            continue
        if _is_whitespace(char):
            out.append(" ")
        elif _is_cjk_ideograph(char):
            out.append(f" {char} ")
        else:
            out.append(char)
    return "".join(out)


def _strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    """Split a word so that every punctuation character stands alone: "a,b!" -> ["a", ",", "b", "!"]."""
    parts: list[str] = []
    run: list[str] = []
    for char in word:
        if _is_punctuation(char):
            if run:
                parts.append("".join(run))
                run = []
            parts.append(char)
        else:
            run.append(char)
    if run:
        parts.append("".join(run))
    return parts


def basic_words(text: str) -> list[str]:
    """Steps 1-3 of the module docstring: the lower-cased, accent-free words and punctuation of `text`."""
    words: list[str] = []
    for word in _clean(text).split():
        words.extend(_split_punctuation(_strip_accents(word.lower())))
    # Lower-casing and NFD can, in principle, yield whitespace inside a word; BERT splits once more.
    return " ".join(words).split()


@functools.lru_cache(maxsize=4)
def _load_vocab(path: str, mtime_ns: int, size: int) -> Mapping[str, int]:
    """Token -> id, one token a line, id = line number. Keyed on mtime and size so a replaced file reloads."""
    vocab: dict[str, int] = {}
    try:
        # newline=None reads "\n", "\r\n" and "\r" line ends, and nothing else, as line breaks.
        with open(path, encoding="utf-8", newline=None) as f:
            for index, line in enumerate(f):
                # A token listed twice keeps the later id, as BERT's loader does.
                vocab[line.strip()] = index
    except UnicodeDecodeError as e:
        raise ModelError(
            f"vocabulary {path} is not UTF-8 text ({e.reason} at byte {e.start})",
            "re-import the model so that its bundle gets a fresh vocab.txt",
        ) from e
    log.debug("loaded %d tokens from %s", len(vocab), path)
    return MappingProxyType(vocab)


class Tokenizer:
    """Chinese-CLIP's text tokenizer over one vocabulary (a bundle's vocab.txt)."""

    def __init__(self, vocab: Mapping[str, int], source: str = "<vocabulary>"):
        missing = [t for t in (CLS_TOKEN, SEP_TOKEN, UNK_TOKEN) if t not in vocab]
        if missing:
            raise ModelError(
                f"vocabulary {source} lacks the special token(s) {', '.join(missing)}",
                "a Chinese-CLIP vocab.txt has them; re-import the model to get a correct bundle",
            )
        self.vocab = vocab
        self.source = source
        self.cls_id = vocab[CLS_TOKEN]
        self.sep_id = vocab[SEP_TOKEN]
        self.unk_id = vocab[UNK_TOKEN]

    @classmethod
    def from_vocab(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Load a vocab.txt. Loading is cached, so asking again for the same file costs nothing."""
        resolved = Path(path).resolve()
        try:
            st = resolved.stat()
        except OSError as e:
            raise ModelError(
                f"cannot read vocabulary {path}: {e.strerror or e}",
                "every model bundle has a vocab.txt; re-import the model with `photod model import`",
            ) from e
        vocab = _load_vocab(str(resolved), st.st_mtime_ns, st.st_size)
        return cls(vocab, source=str(resolved))

    def __len__(self) -> int:
        return len(self.vocab)

    def wordpieces(self, word: str) -> list[str]:
        """Greedy longest-match-first WordPiece split of one basic word; [UNK] when it cannot be split."""
        if len(word) > MAX_CHARS_PER_WORD:
            return [UNK_TOKEN]
        pieces: list[str] = []
        start = 0
        while start < len(word):
            prefix = CONTINUATION_PREFIX if start > 0 else ""
            for end in range(len(word), start, -1):
                piece = prefix + word[start:end]
                if piece in self.vocab:
                    break
            else:
                # One unmatched stretch spoils the whole word, not just the stretch.
                return [UNK_TOKEN]
            pieces.append(piece)
            start = end
        return pieces

    def split(self, text: str) -> list[str]:
        """The word pieces of `text`, before they become ids, without [CLS]/[SEP]."""
        if not isinstance(text, str):
            raise TypeError(f"text to tokenize must be str, not {type(text).__name__}: {text!r:.80}")
        return [piece for word in basic_words(text) for piece in self.wordpieces(word)]

    def encode(self, text: str) -> list[int]:
        """The token ids of `text`, without [CLS]/[SEP], truncation or padding."""
        return [self.vocab[piece] for piece in self.split(text)]

    def tokenize(self, texts: str | Iterable[str], context_length: int = DEFAULT_CONTEXT_LENGTH) -> np.ndarray:
        """Model input for one text or several: int64 array of shape (n, context_length).

        Each row is [CLS], the text's ids cut to context_length - 2, [SEP], then zeros.
        """
        if isinstance(context_length, bool) or not isinstance(context_length, int) or context_length < 2:
            raise ModelError(
                f"context length {context_length!r} is not usable: it must be an integer of at least 2",
                "check context_length in the model bundle's manifest.json",
            )
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        out = np.zeros((len(texts), context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.cls_id, *self.encode(text)[: context_length - 2], self.sep_id]
            out[row, : len(ids)] = ids
        return out
