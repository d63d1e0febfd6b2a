"""Server-side identifiers (ULID) and timestamps (UTC, ISO 8601 with Z)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ulid import ULIDGenerator

ULID_PATTERN = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$"  # canonical text: Crockford base32, 128 bits
_ULID_TEXT = re.compile(ULID_PATTERN)
_made: list[ULIDGenerator] = []
_making = threading.Lock()


def _generator() -> ULIDGenerator:
    """One per process, monotonic, so items made in the same millisecond still sort by creation.

    Made on the first write (python-ulid costs about 4 ms to import: not every cold start writes).
    """
    if not _made:
        with _making:
            if not _made:
                from ulid import ULIDGenerator

                _made.append(ULIDGenerator())
    return _made[0]


def new_id() -> str:
    return str(_generator().generate())


def is_valid_id(value: str) -> bool:
    """True when the text is a canonical ULID: anything else cannot name a stored item."""
    return bool(_ULID_TEXT.match(value))


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
