"""Server-side identifiers (ULID) and timestamps (UTC, ISO 8601 with Z)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ulid import ULIDGenerator

_ULID_TEXT = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


@cache
def _generator() -> ULIDGenerator:
    """Monotonic within a process, so items made in the same millisecond still sort by creation.

    Made on the first write (python-ulid costs about 4 ms to import: not every cold start writes).
    """
    from ulid import ULIDGenerator

    return ULIDGenerator()


def new_id() -> str:
    return str(_generator().generate())


def is_valid_id(value: str) -> bool:
    """True when the text is a canonical ULID: anything else cannot name a stored item."""
    return bool(_ULID_TEXT.match(value))


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
