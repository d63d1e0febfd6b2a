"""Reading this API's own JSON export (GET /exports?format=json) back: the lossless backup."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import BadRequest
from chalicelib.transfer.records import CONTACT_FIELDS, Record, RowError

EXPORT_FORMAT, EXPORT_VERSION = "contact-notes", 1
NOT_OURS = (
    'Not a Contact Notes JSON export: expected {"format": "contact-notes", "version": 1, "contacts": [...]} '
    "as GET /exports?format=json writes it."
)


def read_backup(body: bytes) -> list[Record]:
    """One record per exported contact; each note's text as its author wrote it (the
    normalizer derives the rest again after the import)."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(f"The body is not UTF-8 JSON. {NOT_OURS}") from None
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise BadRequest(NOT_OURS)
    if document.get("version") != EXPORT_VERSION:
        raise BadRequest(
            f"This API reads version {EXPORT_VERSION} of its JSON export, not {document.get('version')!r}."
        )
    contacts = document.get("contacts")
    if not isinstance(contacts, list):
        raise BadRequest(NOT_OURS)
    return [_record(number, contact) for number, contact in enumerate(contacts, start=1)]


def _record(row: int, contact: Any) -> Record:
    record = Record(row)
    if not isinstance(contact, dict):
        record.errors.append(RowError(row, "Each contact must be a JSON object."))
        return record
    for name in CONTACT_FIELDS:
        value = contact.get(name)
        if isinstance(value, str):
            if value.strip():
                record.fields[name] = value
        elif value is not None:
            record.errors.append(RowError(row, "must be a string or null", name))
    notes = contact.get("notes", [])
    if not isinstance(notes, list):
        record.errors.append(RowError(row, "must be a list of notes", "notes"))
        return record
    for note in notes:
        text = note.get("original_body", note.get("body")) if isinstance(note, dict) else None
        if not isinstance(text, str):
            record.errors.append(RowError(row, "each note must be an object with original_body (or body)", "notes"))
        elif text.strip():
            record.notes.append(text)
    return record
