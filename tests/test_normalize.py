"""The pure normalization function: examples and properties (hypothesis)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.normalize import extract_tags, normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  hello  ", "hello"),
        ("a\r\nb\rc\nd", "a\nb\nc\nd"),
        ("tab\there", "tab here"),
        ("nbsp\u00a0\u00a0here", "nbsp here"),
        ("ideographic\u3000space, em\u2003space", "ideographic space, em space"),
        ("bell\x07 null\x00 del\x7f c1\x85 end", "bell null del c1 end"),
        ("trailing   \nspaces\t\n", "trailing\nspaces"),
        ("one\n\n\n\n\ntwo", "one\n\ntwo"),
        ("keep\n\none blank", "keep\n\none blank"),
        ("e\u0301", "\u00e9"),  # NFC
        ("e\x00\u0301", "\u00e9"),  # a control between letter and mark still composes
        ("👩🏽‍💻 family: 👨‍👩‍👧", "👩🏽‍💻 family: 👨‍👩‍👧"),  # ZWJ sequences and skin tones survive
        ("שלום  עולם", "שלום עולם"),  # RTL text
        ("\u202bRTL embed\u202c", "\u202bRTL embed\u202c"),  # format characters are not controls
        ("  \n\n  ", ""),
    ],
)
def test_examples(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("#Alpha and #beta, #ALPHA again", ["alpha", "beta"]),
        ("#follow-up #q3_2026 #42", ["follow-up", "q3_2026", "42"]),
        ("email me at a#b or see page#anchor", []),
        ("#café and #日本 and #Ünïcode", ["café", "日本", "ünïcode"]),
        ("## ## #- #", []),
        ("(#paren) [#bracket]", ["paren", "bracket"]),
        ("no tags here", []),
    ],
)
def test_tags(text: str, tags: list[str]) -> None:
    assert extract_tags(text) == tags


def _significant(text: str) -> str:
    """What must survive: everything but whitespace and control characters, canonically ordered."""
    kept = "".join(c for c in unicodedata.normalize("NFD", text) if not c.isspace() and unicodedata.category(c) != "Cc")
    return unicodedata.normalize("NFD", kept)


MESSY = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\r", "\n", "\t", " ", "\u00a0", "\u2003", "\u3000", "\x00", "\x85", "\u0301", "#", "-"]),
    ),
    max_size=400,
)


@settings(max_examples=600, deadline=None)
@given(MESSY)
@example("\u0958")  # a composition exclusion: NFC turns one character into two
def test_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@settings(max_examples=600, deadline=None)
@given(MESSY)
def test_nothing_lost_but_whitespace_and_controls(text: str) -> None:
    assert _significant(normalize_text(text)) == _significant(text)


@settings(max_examples=600, deadline=None)
@given(MESSY)
@example("\u0958")
def test_never_longer_than_the_input(text: str) -> None:
    # Measured against the input's NFC form: NFC itself lengthens a few characters
    # (composition exclusions such as U+0958 become two code points), and we must not
    # undo NFC to be shorter. Everything else the normalizer does only removes.
    assert len(normalize_text(text)) <= len(unicodedata.normalize("NFC", text))


@settings(max_examples=300, deadline=None)
@given(MESSY)
def test_output_shape(text: str) -> None:
    out = normalize_text(text)
    assert out == out.strip()
    assert "\r" not in out and "\t" not in out and "\n\n\n" not in out
    assert all(unicodedata.category(c) != "Cc" or c == "\n" for c in out)
    assert all(line == line.rstrip() for line in out.split("\n"))
    assert "  " not in out
    assert unicodedata.is_normalized("NFC", out)


@settings(max_examples=300, deadline=None)
@given(MESSY)
def test_tags_are_lowercase_unique_and_found_in_the_text(text: str) -> None:
    body = normalize_text(text)
    tags = extract_tags(body)
    assert len(tags) == len(set(tags))
    assert all(tag == tag.lower() and tag for tag in tags)
    assert all(f"#{tag}" in body.lower() for tag in tags)
