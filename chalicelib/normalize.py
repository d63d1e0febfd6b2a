"""Note content normalization: a pure function of the text, run by the stream handler.

Written by hand: the rules are this product's own (no library normalizes text to them);
the building blocks (unicodedata, re) are the standard library's.
"""

from __future__ import annotations

import re
import unicodedata

NORMALIZER_VERSION = "1"

_NEWLINES = re.compile(r"\r\n?")
# C0 and C1 controls and DEL (category Cc), except TAB and LF which survive this step.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Horizontal whitespace: any Unicode whitespace but LF (TAB, NBSP, U+2000..U+200A, U+3000, ...).
_HORIZONTAL = re.compile(r"[^\S\n]+")
_TRAILING = re.compile(r" +$", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")
# A hashtag starts after a non-word character (or the start) and holds at least one word character.
_HASHTAG = re.compile(r"(?<![\w#-])#([\w-]*\w[\w-]*)")


def normalize_text(text: str) -> str:
    """Tidy a note: NFC, LF line ends, no controls, single spaces, at most one blank line, trimmed.

    Emoji (including ZWJ sequences and skin tones), right-to-left text and combining marks
    pass through; only whitespace and control characters are ever dropped. NFC comes last
    so that removing a control character between a letter and its combining mark still
    yields the composed form, which keeps the function idempotent.
    """
    text = _NEWLINES.sub("\n", text)
    text = _CONTROLS.sub("", text)
    text = _HORIZONTAL.sub(" ", text)
    text = _TRAILING.sub("", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    text = text.strip()
    return unicodedata.normalize("NFC", text)


def extract_tags(text: str) -> list[str]:
    """Hashtags (#word: letters, digits, _ and -), lowercased, unique, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in _HASHTAG.finditer(text):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)
