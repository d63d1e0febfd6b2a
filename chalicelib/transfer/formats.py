"""How one contact is written in each export format: CSV (RFC 4180), vCard 3.0 (RFC 2426)
and the JSON backup. Pure functions of the API's own shapes; no HTTP, no DynamoDB."""

from __future__ import annotations

import csv
import io
import json

from chalicelib.schemas import ContactOut, ExportedContact, NoteOut

CSV_COLUMNS = ("id", "first_name", "last_name", "email", "phone", "company", "title", "created_at", "updated_at")
BACKUP_FORMAT, BACKUP_VERSION = "contact-notes", 1


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    # RFC 4180: CRLF line ends, fields quoted when they hold a comma, a quote or a line break.
    csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(values)
    return out.getvalue()


def csv_header() -> str:
    return _csv_line(list(CSV_COLUMNS))


def csv_row(contact: ContactOut) -> str:
    """The contact's fields as stored (no formula escaping: see README, "Export"); absent as empty."""
    fields = contact.model_dump()
    return _csv_line([fields[name] or "" for name in CSV_COLUMNS])


def vcard(contact: ContactOut) -> str:
    """One vCard 3.0 (vobject escapes commas, semicolons, backslashes and line breaks, and folds
    long lines): VERSION, FN, N, EMAIL, TEL, ORG, TITLE, UID (our id), REV (updated_at)."""
    import vobject  # on first use: only vCard exports pay for it

    card = vobject.vCard()
    card.add("n").value = vobject.vcard.Name(family=contact.last_name or "", given=contact.first_name)
    card.add("fn").value = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    if contact.email:
        email = card.add("email")
        email.value = contact.email
        email.type_param = "INTERNET"
    if contact.phone:
        card.add("tel").value = contact.phone
    if contact.company:
        card.add("org").value = [contact.company]
    if contact.title:
        card.add("title").value = contact.title
    card.add("uid").value = contact.id
    card.add("rev").value = contact.updated_at
    return str(card.serialize())


def backup_head() -> str:
    return f'{{"format":"{BACKUP_FORMAT}","version":{BACKUP_VERSION},"contacts":['


def backup_contact(contact: ContactOut, notes: list[NoteOut]) -> str:
    """The contact, every field, with its notes (oldest first)."""
    return ExportedContact(**contact.model_dump(), notes=notes).model_dump_json()


def backup_tail(next_cursor: str | None) -> str:
    return '],"next_cursor":' + json.dumps(next_cursor) + "}"
