"""What a file's reader hands the import: one `Record` per row (CSV), card (vCard) or contact (JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

# The contact fields a record may carry (ContactIn's), in the order exports write them.
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "company", "title")

MAX_ROWS = 10_000  # records per request; more is a 413 saying to split (the CLI does)
MAX_BYTES = 5 * 1024 * 1024  # bytes per request, likewise


@dataclass
class RowError:
    """Something wrong with one record: reported, and that record is not written."""

    row: int
    detail: str
    field: str | None = None


@dataclass
class Record:
    """One contact as a file describes it, before validation.

    `row`: where a person finds it in the file: the line number a spreadsheet shows for CSV (the
    header is row 1, so the first contact is row 2, whatever quoted newlines span), the card's
    1-based number for vCard, the contact's 1-based position for JSON.
    `fields`: only CONTACT_FIELDS, only non-empty values (an empty value is an absent value).
    `notes`: note texts to add to the contact, in order; empty ones left out.
    `errors`: what the reader already knows is wrong (no name at all, a bad cell): the record is
    reported and not written; other checks (email syntax, lengths) are the import's.
    """

    row: int
    fields: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
