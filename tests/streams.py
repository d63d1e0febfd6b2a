"""Factories for DynamoDB stream events, built from the stored models (as Lambda delivers them)."""

from __future__ import annotations

import itertools
import time
from typing import Any

from chalicelib.models import Contact, Note

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/contact-notes-notes/stream/2026-01-01T00:00:00.000"
AUDIT_STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/contact-notes-audit/stream/2026-01-01T00:00:00.000"
CONTACTS_STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/contact-notes-contacts/stream/2026-01-01T00:00:00.000"
)
_sequence = itertools.count(1)


def record(event_name: str, new: Note | Contact | None = None, old: Note | Contact | None = None) -> dict[str, Any]:
    """One stream record of a note or a contact in Lambda's event shape (NEW_AND_OLD_IMAGES)."""
    source = new or old
    assert source is not None
    if isinstance(source, Note):
        keys, arn = {"owner_id": {"S": source.owner_id}, "note_id": {"S": source.note_id}}, STREAM_ARN
    else:
        keys, arn = {"owner_id": {"S": source.owner_id}, "contact_id": {"S": source.contact_id}}, CONTACTS_STREAM_ARN
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": int(time.time()),
        "Keys": keys,
        "SequenceNumber": f"{next(_sequence):021d}",
        "SizeBytes": 256,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        change["NewImage"] = new.serialize()
    if old is not None:
        change["OldImage"] = old.serialize()
    return {
        "eventID": change["SequenceNumber"],
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": arn,
    }


def audit_record(change_event: dict[str, Any], event_name: str = "INSERT") -> dict[str, Any]:
    """One record of the audit table's stream (NEW_IMAGE) carrying a change event, its image the
    item the change-event consumer writes (chalicelib.events.audit.entry_of)."""
    from chalicelib.events.audit import entry_of

    sequence = f"{next(_sequence):021d}"
    keys = {"workspace_id": {"S": change_event["workspace_id"]}, "event_id": {"S": change_event["id"]}}
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": int(time.time()),
        "Keys": keys,
        "SequenceNumber": sequence,
        "SizeBytes": 512,
        "StreamViewType": "NEW_IMAGE",
    }
    if event_name != "REMOVE":
        change["NewImage"] = entry_of(change_event, retention_days=365).serialize()
    return {
        "eventID": sequence,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": AUDIT_STREAM_ARN,
    }


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def stored(owner_id: str, note_id: str) -> Note:
    return Note.get(owner_id, note_id, consistent_read=True)


def stored_contact(owner_id: str, contact_id: str) -> Contact:
    return Contact.get(owner_id, contact_id, consistent_read=True)
