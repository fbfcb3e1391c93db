"""Filename and folder search text: what goes into the FTS5 table and how a query is turned into MATCH.

FTS5's unicode61 tokenizer keeps a run of CJK characters as one token, so 三亚 would never match inside
2019三亚婚礼. We space CJK characters apart on the way in and search them as a phrase on the way out, which
matches any substring of two or more characters, as a person typing part of a folder name expects.
"""

from __future__ import annotations

import re

# CJK ideographs, kana, hangul, and full-width forms: characters that are words on their own.
_CJK = re.compile(
    "([\u2e80-\u2fff\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    "\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f])"
)
_SEPARATORS = re.compile(r"[\s_\-.,/\\()\[\]{}+~!@#$%^&*=;:'\"<>?|`]+")


def search_text(rel_path: str) -> str:
    """The text indexed for a photo: its path's words, with CJK characters spaced apart."""
    return _spaced(rel_path)


def _spaced(text: str) -> str:
    text = _SEPARATORS.sub(" ", text)
    text = _CJK.sub(r" \1 ", text)
    return " ".join(text.split())


def fts_query(user_text: str, exact: bool = False) -> str | None:
    """Turn what a person typed into an FTS5 MATCH expression; None when nothing searchable is left.

    Every word must match (AND). A latin word matches as a prefix (`wed` finds `wedding`), a CJK run
    matches as a phrase of its characters. Quotes keep FTS5 operators in filenames from being read as syntax.
    `exact`: the words as one phrase, the last one whole (a quoted "三亚湾" or "red car" in a query).
    """
    if exact:
        tokens = _spaced(user_text).split()
        return '"' + " ".join(t.replace('"', '""') for t in tokens) + '"' if tokens else None
    terms = []
    for word in _SEPARATORS.sub(" ", user_text).split():
        tokens = _spaced(word).split()
        if not tokens:
            continue
        phrase = " ".join(t.replace('"', '""') for t in tokens)
        prefix = "*" if not _CJK.match(tokens[-1]) else ""
        terms.append(f'"{phrase}"{prefix}')
    return " AND ".join(terms) if terms else None


def fts_any(items: list[tuple[str, bool]]) -> str | None:
    """One MATCH expression for photos holding any of the (text, exact) items; None when none is searchable."""
    parts = [q for q in (fts_query(text, exact=exact) for text, exact in items) if q]
    return " OR ".join(f"({q})" for q in parts) or None
