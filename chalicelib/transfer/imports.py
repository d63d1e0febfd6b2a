"""POST /imports: a file's records validated, matched by email, and written in bulk.

Calls: one BatchGetItem per 100 distinct emails (which of them a contact already has), then the
bulk engine's transactions (about three per 100 rows with an email and a note each). A dry run
makes the reads only, so its report is the real run's, barring writes by others meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from chalicelib import services, store
from chalicelib.config import Settings
from chalicelib.errors import PayloadTooLarge
from chalicelib.ids import utc_now
from chalicelib.models import Contact, ContactEmail
from chalicelib.schemas import ContactIn, NoteIn
from chalicelib.transfer import bulk
from chalicelib.transfer.records import MAX_ROWS, Record, RowError
from chalicelib.transfer.schemas import ImportReport, ImportRowError

RACED = "Another contact took this email while the import ran; import the row again."
BUSY = "The database was too busy to write this row; import it again (rows already in are skipped)."
PARTLY = (
    "The contact went in with some of its notes; {missing} were not added (the database was busy): "
    "add them to it, importing the row again would skip it."
)
GONE = "The contact with this email changed or was deleted while the import ran; import the row again."


@dataclass
class _Entry:
    """A valid record (or several with one email, merged) and what it will do."""

    row: int
    data: dict[str, Any]  # ContactIn's fields, absent ones left out
    notes: list[str]
    rows: list[int] = field(default_factory=list)  # every row merged into it, its own first
    existing: str | None = None  # the id of the contact with its email, if one has it
    units: list[bulk.Unit] = field(default_factory=list)  # what writing it takes (none in a dry run)

    @property
    def email_key(self) -> str | None:
        return store.contact_email_key(self.data.get("email"))


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    notes_created: int = 0
    errors: list[RowError] = field(default_factory=list)

    def fail(self, errors: list[RowError]) -> None:
        self.errors.extend(errors)

    def report(self, dry_run: bool) -> ImportReport:
        ordered = sorted(self.errors, key=lambda e: e.row)
        return ImportReport(
            created=self.created,
            updated=self.updated,
            skipped=self.skipped,
            failed=len({e.row for e in ordered}),
            notes_created=self.notes_created,
            errors=[ImportRowError(row=e.row, field=e.field, detail=e.detail) for e in ordered],
            dry_run=dry_run,
        )


def run_import(
    settings: Settings,
    owner_id: str,
    records: list[Record],
    *,
    on_conflict: Literal["skip", "update"],
    dry_run: bool,
    shared: bool,
    actor: str,
) -> ImportReport:
    if len(records) > MAX_ROWS:
        raise PayloadTooLarge(
            f"The file has {len(records):,} rows; at most {MAX_ROWS:,} per request. Split it "
            "(`contact-notes import` does that for you)."
        )
    tally = _Tally()
    entries = _merged(_valid(records, tally), on_conflict, tally)
    holders = bulk.claims(owner_id, [key for e in entries if (key := e.email_key)], settings.write_workers)
    for entry in entries:
        entry.existing = holders.get(entry.email_key or "")
    if on_conflict == "skip":
        tally.skipped += sum(len(e.rows) for e in entries if e.existing)
        entries = [e for e in entries if not e.existing]
    if not dry_run:
        entries = _write(settings, owner_id, entries, shared, tally, actor)
    for entry in entries:  # what was written (all of them, in a dry run)
        tally.created += 0 if entry.existing else 1
        tally.updated += len(entry.rows) - (0 if entry.existing else 1)
        tally.notes_created += bulk.notes_written(entry.units) if entry.units else len(entry.notes)
    return tally.report(dry_run)


def _valid(records: list[Record], tally: _Tally) -> list[_Entry]:
    """The records the schema accepts (ContactIn and NoteIn, as POST /contacts would); the
    others reported, each error with its field."""
    entries = []
    for record in records:
        if record.errors:
            tally.fail(record.errors)
            continue
        errors: list[RowError] = []
        try:
            data = ContactIn.model_validate(record.fields).model_dump(exclude_none=True)
        except ValidationError as exc:
            errors += [_row_error(record.row, err) for err in exc.errors(include_input=False, include_url=False)]
        for text in record.notes:
            try:
                NoteIn.model_validate({"body": text})
            except ValidationError as exc:
                errors += [RowError(record.row, f"a note {err['msg']}", "notes") for err in exc.errors()]
        if errors:
            tally.fail(errors)
        else:
            entries.append(_Entry(record.row, data, list(record.notes), [record.row]))
    return entries


def _row_error(row: int, err: Any) -> RowError:
    name = str(err["loc"][0]) if err["loc"] else None
    return RowError(row, str(err["msg"]), name)


def _merged(entries: list[_Entry], on_conflict: str, tally: _Tally) -> list[_Entry]:
    """One entry per email: a later row with an email an earlier one has is skipped, or
    (update) merged into it: its non-empty fields win and its notes are added."""
    first: dict[str, _Entry] = {}
    kept = []
    for entry in entries:
        key = entry.email_key
        if key is None or key not in first:
            if key is not None:
                first[key] = entry
            kept.append(entry)
        elif on_conflict == "skip":
            tally.skipped += 1
        else:
            earlier = first[key]
            earlier.data.update(entry.data)
            earlier.notes += entry.notes
            earlier.rows.append(entry.row)
    return kept


def _write(
    settings: Settings, owner_id: str, entries: list[_Entry], shared: bool, tally: _Tally, actor: str
) -> list[_Entry]:
    """Commit the entries (each all or nothing); return those written, report the others."""
    now = utc_now()
    for index, entry in enumerate(entries):
        entry.units = _units(settings, owner_id, index, entry, now, actor)
    seconds = settings.bulk_deadline_seconds
    deadline = None if seconds is None else time.monotonic() + seconds
    units = [unit for entry in entries for unit in entry.units]
    failed = bulk.commit(units, owner_id if shared else None, settings.write_workers, deadline)
    written = []
    for index, entry in enumerate(entries):
        label = failed.get(index)
        if label is None:
            written.append(entry)
        elif entry.units[0].written:  # the contact and its first notes went in, not all its notes
            missing = len(entry.notes) - bulk.notes_written(entry.units)
            tally.fail([RowError(entry.rows[0], PARTLY.format(missing=missing), "notes")])
            written.append(entry)
        else:
            detail, field = {"email": (RACED, "email"), bulk.UNAVAILABLE: (BUSY, None)}.get(label, (GONE, "email"))
            tally.fail([RowError(row, detail, field) for row in entry.rows])
    return written


def _units(settings: Settings, owner_id: str, index: int, entry: _Entry, now: str, actor: str) -> list[bulk.Unit]:
    unit = bulk.Unit(index)
    key = entry.email_key
    if entry.existing:  # update: the row's non-empty fields; only while it still has this email
        contact = Contact(owner_id, entry.existing)
        # (phone_e164 None: the new phone does not parse, so the old number's form goes.)
        changes = services.contact_changes(settings, entry.data, actor, now)
    else:
        contact = services.new_contact(settings, owner_id, entry.data, now, email_key=key, updated_by=actor)
    notes = [services.new_note(owner_id, contact.contact_id, text, now, actor) for text in entry.notes]
    own_notes, more = bulk.notes_units(index, contact, notes)
    if entry.existing:
        actions = store.set_or_remove(Contact, {**changes, **({"has_notes": True} if own_notes else {})})
        unit.update("contact", contact, [*actions, Contact.version.add(1)], Contact.email_key == key)
    else:
        contact.has_notes = True if own_notes else None
        unit.put("contact", contact, Contact.contact_id.does_not_exist())
        if key is not None:
            claim = ContactEmail(owner_id, key, contact_id=contact.contact_id)
            unit.put("email", claim, ContactEmail.email.does_not_exist())
    for note in own_notes:
        unit.put("note", note, None)
    return [unit, *more]
