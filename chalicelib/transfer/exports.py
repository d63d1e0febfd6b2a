"""GET /exports (#15): one page of the workspace's contacts in CSV, vCard or the JSON backup.

A page is one Query of the contacts (newest first, one more than the page to know whether
more remain), and for the JSON backup the notes of exactly those contacts: their ids form a
contiguous range of the contacts table, so their notes are one range of the notes' by_contact
index (one Query per 1 MB), never one Query per contact. A page ends early, before the
contact that would take its body past BODY_LIMIT_BYTES (4 MiB; a Lambda answer can be 6 MB),
and its cursor continues from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from chalicelib import store
from chalicelib.config import Settings
from chalicelib.models import Contact, Note
from chalicelib.pagination import decode_cursor, encode_cursor
from chalicelib.schemas import ExportQuery
from chalicelib.services import contact_out, note_out
from chalicelib.transfer import formats

BODY_LIMIT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Layout:
    """How a format lays out a page: what opens it, each contact, and what closes it."""

    media_type: str
    filename: str
    head: Callable[[], str]
    item: Callable[[Contact, list[Note]], str]
    separator: str = ""
    tail: Callable[[str | None], str] = lambda _cursor: ""
    with_notes: bool = False


LAYOUTS = {
    "csv": Layout(
        "text/csv; charset=utf-8; header=present",
        "contacts.csv",
        formats.csv_header,
        lambda contact, _notes: formats.csv_row(contact_out(contact)),
    ),
    "vcard": Layout(
        "text/vcard; charset=utf-8",
        "contacts.vcf",
        lambda: "",
        lambda contact, _notes: formats.vcard(contact_out(contact)),
    ),
    "json": Layout(
        "application/json",
        "contacts.json",
        formats.backup_head,
        lambda contact, notes: formats.backup_contact(contact_out(contact), [note_out(n) for n in notes]),
        separator=",",
        tail=formats.backup_tail,
        with_notes=True,
    ),
}


@dataclass(frozen=True)
class ExportBody:
    """A page as sent: its text, media type, download name, and the next page's cursor."""

    body: str
    media_type: str
    filename: str
    next_cursor: str | None


def export_page(settings: Settings, owner_id: str, query: ExportQuery) -> ExportBody:
    """One page of the export `query` asks for (InvalidCursor for a cursor not of this owner and format)."""
    layout = LAYOUTS[query.format]
    scope = "exports:" + query.format
    after = None if query.cursor is None else decode_cursor(settings.signing_secret, owner_id, scope, query.cursor)
    size = settings.export_page_size
    found = store.query_contacts(owner_id, size + 1, after)
    page = found[:size]
    items, shown = _fitting(layout, _with_notes(owner_id, page) if layout.with_notes else ((c, []) for c in page))
    more = shown < len(found)
    cursor = encode_cursor(settings.signing_secret, owner_id, scope, page[shown - 1].contact_id) if more else None
    body = layout.head() + layout.separator.join(items) + layout.tail(cursor)
    return ExportBody(body, layout.media_type, layout.filename, cursor)


def _fitting(layout: Layout, contacts: Iterable[tuple[Contact, list[Note]]]) -> tuple[list[str], int]:
    """The contacts written out, as many as fit in BODY_LIMIT_BYTES (at least one, so that an
    export always moves on), and how many that is."""
    items: list[str] = []
    used = len(layout.head().encode()) + len(layout.tail("x" * 128).encode())  # the longest cursor
    for contact, notes in contacts:
        item = layout.item(contact, notes)
        used += len(item.encode()) + len(layout.separator)
        if items and used > BODY_LIMIT_BYTES:
            break
        items.append(item)
    return items, len(items)


def _with_notes(owner_id: str, page: list[Contact]) -> Iterator[tuple[Contact, list[Note]]]:
    """Each contact of the page (newest first) with its notes, oldest first.

    The notes come from one range of the by_contact index, newest contact first as the page,
    read only as far as the page is written. Only contacts that ever had a note bound the
    range (the has_notes mark); a page where none did needs no Query at all.
    """
    noted = [contact.contact_id for contact in page if contact.has_notes]
    notes = store.notes_of_contacts(owner_id, noted[-1], noted[0]) if noted else iter(())
    pending = next(notes, None)
    for contact in page:
        mine: list[Note] = []
        # Notes of contacts after this one in the range and not on the page (being deleted) are passed over.
        while pending is not None and pending.contact_id >= contact.contact_id:
            if pending.contact_id == contact.contact_id:
                mine.append(pending)
            pending = next(notes, None)
        mine.reverse()
        yield contact, mine
