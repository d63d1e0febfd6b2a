"""Opaque, tamper-evident list cursors.

A cursor carries only the id of the last item a page showed, signed with a key derived
from the JWT secret and bound to the owner and the list it came from. The server rebuilds
the DynamoDB start key from the caller's own owner_id, so even a valid cursor cannot point
into someone else's data; a foreign, stale-secret or edited cursor answers 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from chalicelib.errors import InvalidCursor
from chalicelib.ids import is_valid_id

_VERSION = b"c1"
_TAG_BYTES = 16
_MAX_CURSOR_CHARS = 128


def _tag(secret: str, owner_id: str, scope: str, last_id: str) -> bytes:
    key = hmac.new(secret.encode(), b"contact-notes/cursor/v1", hashlib.sha256).digest()
    message = "\x1f".join((owner_id, scope, last_id)).encode()
    return hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES]


def encode_cursor(secret: str, owner_id: str, scope: str, last_id: str) -> str:
    raw = _VERSION + last_id.encode() + _tag(secret, owner_id, scope, last_id)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(secret: str, owner_id: str, scope: str, cursor: str) -> str:
    """The last item id a cursor names, or InvalidCursor."""
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise InvalidCursor("The cursor is not one this API issued.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor("The cursor is not one this API issued.") from None
    body, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if len(raw) <= len(_VERSION) + _TAG_BYTES or not body.startswith(_VERSION):
        raise InvalidCursor("The cursor is not one this API issued.")
    try:
        last_id = body[len(_VERSION) :].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidCursor("The cursor is not one this API issued.") from None
    expected = _tag(secret, owner_id, scope, last_id)
    if not hmac.compare_digest(tag, expected) or not is_valid_id(last_id):
        raise InvalidCursor("The cursor is not valid for this list.")
    return last_id


# ---- positions in a ranked list (search) ------------------------------------------------
#
# A search's page ends at a place in a ranking, not at an item id: (score, created, kind,
# id). The cursor carries that position in the clear (it names only the caller's own item)
# with a tag over the owner and the scope (the query it ranks), under its own version, so a
# list cursor is never read as a position nor one query's position as another's.

_POSITION_VERSION = b"p1"
_SEP = "\x1f"


def encode_position(secret: str, owner_id: str, scope: str, position: tuple[str, ...]) -> str:
    text = _SEP.join(position)
    raw = _POSITION_VERSION + text.encode() + _tag(secret, owner_id, "position" + _SEP + scope, text)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_position(secret: str, owner_id: str, scope: str, cursor: str, size: int) -> tuple[str, ...]:
    """The `size` parts of the position a cursor names, or InvalidCursor."""
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise InvalidCursor("The cursor is not one this API issued.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if len(raw) <= len(_POSITION_VERSION) + _TAG_BYTES or not body.startswith(_POSITION_VERSION):
            raise ValueError("not a position")
        text = body[len(_POSITION_VERSION) :].decode("ascii")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise InvalidCursor("The cursor is not one this API issued.") from None
    expected = _tag(secret, owner_id, "position" + _SEP + scope, text)
    parts = tuple(text.split(_SEP))
    if not hmac.compare_digest(tag, expected) or len(parts) != size:
        raise InvalidCursor("The cursor is not valid for this query.")
    return parts
