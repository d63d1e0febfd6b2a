"""The patterns published in the OpenAPI document mean exactly what the server checks."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.schemas import NON_BLANK_LINE_PATTERN, SINGLE_LINE_PATTERN, VISIBLE_PATTERN, ContactIn, NoteIn

# Characters at the edges of the rules: spaces of every kind, controls, invisible format
# characters, and ordinary letters.
TRICKY = st.text(
    alphabet=st.sampled_from(["a", "é", " ", "\t", "\n", "\r", "\x01", "\x1f", "\x7f", "\x85", "\u00a0",
                              "\u2003", "\u200b", "\u2060", "\ufeff", "\u00ad", "\u3000"]),
    max_size=8,
)  # fmt: skip


def _accepts(build: object) -> bool:
    try:
        build()  # type: ignore[operator]
    except ValidationError:
        return False
    return True


@settings(max_examples=1500, deadline=None)
@given(TRICKY)
def test_required_single_line_matches_its_pattern(value: str) -> None:
    assert _accepts(lambda: ContactIn(first_name=value)) == bool(re.search(NON_BLANK_LINE_PATTERN, value))


@settings(max_examples=1500, deadline=None)
@given(TRICKY)
def test_optional_single_line_matches_its_pattern(value: str) -> None:
    assert _accepts(lambda: ContactIn(first_name="x", last_name=value)) == bool(re.search(SINGLE_LINE_PATTERN, value))


@settings(max_examples=1500, deadline=None)
@given(TRICKY)
def test_note_body_matches_its_pattern(value: str) -> None:
    assert _accepts(lambda: NoteIn(body=value)) == (len(value) >= 1 and bool(re.search(VISIBLE_PATTERN, value)))


def test_published_email_pattern_names_the_domains_the_validator_refuses() -> None:
    import re

    import email_validator

    from chalicelib.schemas import EMAIL_PATTERN, SPECIAL_USE_DOMAINS

    assert list(SPECIAL_USE_DOMAINS) == email_validator.SPECIAL_USE_DOMAIN_NAMES
    for refused in ("v@z6geunw9.test", "a@corp.LOCAL", "b@localhost", "c@x.onion"):
        assert not re.search(EMAIL_PATTERN, refused), refused
    for accepted in ("john@example.com", "a@test.example.com", "x@local-shop.de"):
        assert re.search(EMAIL_PATTERN, accepted), accepted
