"""Schemathesis hooks for tests/test_contract.py (loaded by the CLI from its config's `hooks`).

The fuzzer draws Idempotency-Key values from a small space and sends the same one with other
bodies, which the API answers, as issue #16 says, with 422 (the key was first used for another
request). So each request that carries a valid key gets a fresh one of the same shape; an
invalid key is sent as drawn (its 400 is checked). Replays are tested in tests/test_idempotency.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

KEY = "Idempotency-Key"
MAX_LENGTH = 255


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    key = (case.headers or {}).get(KEY)
    if isinstance(key, str) and 1 <= len(key) <= MAX_LENGTH and all(" " <= ch <= "~" for ch in key):
        fresh = str(uuid.uuid4())
        case.headers[KEY] = key[: MAX_LENGTH - len(fresh) - 1] + "-" + fresh
