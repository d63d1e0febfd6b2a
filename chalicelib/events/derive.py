"""A contacts or notes stream record → its change event, or None when it is not a user's change.

The event (README, "Change events"): id, type, occurred_at, workspace_id, actor_id,
resource_id, contact_id, changes {field: [old, new]} (updates), data (the resource as the API
returns it; absent for deletes).

- Who: every API write stores its user in the item's `updated_by`; a delete writes a
  DeletionMark in its own transaction (a removed item's old image names only its last editor).
  Notes swept with their contact carry the contact's mark. A REMOVE with no mark is no user's
  change (a deleted workspace's sweep, chalicelib.workspaces.purge): no event.
- Not a user's change: a MODIFY that keeps the version (the first note's mark on its contact,
  the normalizer's failed-attempt count), or a note's that leaves it processed or failed (the
  normalizer's write-back): every API write adds one to the version and leaves a note
  pending. So the normalizer produces no event (README says so). Not `updated_at`: two writes
  in one millisecond (a batch's operations share one) would look like one.
- The id is derived from the change (workspace, item, version, type) with the change's time
  in front, so a redelivered record yields the same id and ids sort by time (a ULID).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from chalicelib.models import PENDING, Contact, DeletionMark, Note

EVENT_PREFIX = "evt_"
TYPES = ("contact.created", "contact.updated", "contact.deleted", "note.created", "note.updated", "note.deleted")
# Fields every change moves: they are in `data`, never listed as changes.
BOOKKEEPING = frozenset({"version", "updated_at"})
UNKNOWN_ACTOR = "unknown"  # an item last written before change events existed
# An audit item is at most 400 KB: an event larger than this drops its largest texts
# (listed in `omitted`), first the old and new bodies in `changes`, then `data`'s.
MAX_EVENT_BYTES = 300_000
_SHRINK_ORDER = (
    ("changes", "original_body"),
    ("changes", "body"),
    ("data", "original_body"),
    ("data", "body"),
)

MarkLookup = Callable[[str, str, str], DeletionMark | None]  # (workspace, kind, item id) -> mark


def event_of(record: DynamoDBRecord, mark_of: MarkLookup) -> dict[str, Any] | None:
    if record.dynamodb is None:
        raise ValueError("a stream record without its change")
    raw = record.dynamodb.raw_event
    key_names = set(record.dynamodb.keys or {})
    kind = "note" if "note_id" in key_names else "contact" if "contact_id" in key_names else ""
    if not kind:
        raise ValueError("a record of neither a contact nor a note")
    name = record.event_name
    if name == DynamoDBRecordEventName.REMOVE:
        return _deleted(kind, _resource(kind, raw["OldImage"]), mark_of)
    new = _resource(kind, raw["NewImage"])
    if name == DynamoDBRecordEventName.INSERT:
        return _event(kind, "created", new, new["_actor"], new["created_at"], data=new)
    old = _resource(kind, raw["OldImage"])
    if not _users_change(kind, old, new):
        return None
    changes = {
        field: [old.get(field), value]
        for field, value in new.items()
        if not field.startswith("_") and field not in BOOKKEEPING and old.get(field) != value
    }
    return _event(kind, "updated", new, new["_actor"], new["updated_at"], data=new, changes=changes)


def _users_change(kind: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Every API write of an item adds one to its version and leaves a note pending; the first
    note's mark on its contact and the normalizer's failed-attempt count keep the version, and
    the normalizer's write-back (or its giving up) leaves the note processed (or failed)."""
    if old["version"] == new["version"]:
        return False
    return kind == "contact" or new["processing_status"] == PENDING


def _resource(kind: str, raw_image: dict[str, Any]) -> dict[str, Any]:
    """The item as the API returns it, plus its keys and actor (prefixed `_`)."""
    from chalicelib import services  # the API's own representation of each resource

    if kind == "contact":
        contact = Contact.from_raw_data(raw_image)
        out = services.contact_out(contact).model_dump(mode="json")
        owner, actor, contact_id = contact.owner_id, contact.updated_by, contact.contact_id
    else:
        note = Note.from_raw_data(raw_image)
        out = services.note_out(note).model_dump(mode="json")
        owner, actor, contact_id = note.owner_id, note.updated_by, note.contact_id
    return {**out, "_workspace": owner, "_actor": actor or UNKNOWN_ACTOR, "_contact": contact_id}


def _deleted(kind: str, old: dict[str, Any], mark_of: MarkLookup) -> dict[str, Any] | None:
    mark = mark_of(old["_workspace"], kind, old["id"])
    if mark is None and kind == "note":
        mark = mark_of(old["_workspace"], "contact", old["_contact"])  # swept with its contact
    if mark is None:
        return None  # no user deleted it: the sweep of a deleted workspace
    return _event(kind, "deleted", old, mark.actor_id, mark.deleted_at)


def _event(
    kind: str,
    action: str,
    item: dict[str, Any],
    actor: str,
    occurred_at: str,
    *,
    data: dict[str, Any] | None = None,
    changes: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    event_type = f"{kind}.{action}"
    event: dict[str, Any] = {
        "id": event_id(occurred_at, item["_workspace"], event_type, item["id"], item["version"]),
        "type": event_type,
        "occurred_at": occurred_at,
        "workspace_id": item["_workspace"],
        "actor_id": actor,
        "resource_id": item["id"],
        "contact_id": item["_contact"],
    }
    if changes is not None:
        event["changes"] = changes
    if data is not None:
        event["data"] = {k: v for k, v in data.items() if not k.startswith("_")}
    return _within_limit(event)


def event_id(occurred_at: str, workspace_id: str, event_type: str, item_id: str, version: int) -> str:
    """A ULID: the change's time (milliseconds) and 80 bits of a hash of what changed."""
    from ulid import ULID

    millis = int(datetime.fromisoformat(occurred_at.replace("Z", "+00:00")).timestamp() * 1000)
    digest = hashlib.sha256(f"{workspace_id}|{event_type}|{item_id}|{version}".encode()).digest()
    return EVENT_PREFIX + str(ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10]))


def time_bound(instant: datetime, *, last: bool) -> str:
    """The smallest (or largest) event id at that instant: key bounds for since/until."""
    from ulid import ULID

    millis = int(instant.timestamp() * 1000)
    tail = (b"\xff" if last else b"\x00") * 10
    return EVENT_PREFIX + str(ULID.from_bytes(max(millis, 0).to_bytes(6, "big") + tail))


def encoded(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def _within_limit(event: dict[str, Any]) -> dict[str, Any]:
    if len(encoded(event).encode()) <= MAX_EVENT_BYTES:
        return event
    omitted = []
    for part, field in _SHRINK_ORDER:
        section = event.get(part)
        if isinstance(section, dict) and field in section:
            del section[field]
            omitted.append(f"{part}.{field}")
            event["omitted"] = omitted
            if len(encoded(event).encode()) <= MAX_EVENT_BYTES:
                break
    return event
