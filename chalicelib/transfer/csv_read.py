"""Reading a CSV export into records: Google Contacts (current and legacy "Google CSV"), Outlook,
our own export, or any other header set matched by common column names or an explicit mapping.

Headers are compared by their letters and digits only, case-folded ("E-mail 1 - Value" is
"email1value"), so spelling variants of one name match. Google's header sets (current: "First
Name", "Organization Name", "E-mail 1 - Value"; legacy: "Given Name", "Organization 1 - Name")
and ours are read by the common names; Outlook's is detected (its "Title" is the honorific).
A header without a comma but with semicolons or tabs (Excel in many locales) sets the
delimiter. Products repeat columns (E-mail 1,
E-mail 2, ...) and join several values in one cell with " ::: " (Google); the value a product
marks preferred wins (Google writes "* " before the preferred value's label), else the first
non-empty one. Row numbers are the ones a spreadsheet shows: the header is row 1, and a record
whose quoted cells span lines is still one row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from chalicelib.errors import BadRequest
from chalicelib.transfer.names import NameParts, name_fields
from chalicelib.transfer.records import Record

# Our field -> the reader's role for it (`mapping` keys are our fields).
MAPPABLE = {
    "first_name": "given",
    "last_name": "family",
    "email": "email",
    "phone": "phone",
    "company": "company",
    "title": "title",
    "notes": "notes",
}
MULTI_VALUE = " ::: "  # Google's separator of several values in one cell

# Column names by role, most telling first; a file's columns are matched by `key()`.
COMMON: dict[str, tuple[str, ...]] = {
    "given": ("firstname", "givenname", "first", "forename", "fname"),
    "family": ("lastname", "familyname", "surname", "last", "lname"),
    "display": ("name", "fullname", "displayname", "contactname", "contact"),
    "email": ("email", "emailaddress", "mail", "primaryemail", "workemail", "personalemail", "homeemail"),
    "phone": (
        *("phone", "phonenumber", "mobile", "mobilephone", "mobilenumber", "cell", "cellphone", "telephone"),
        *("tel", "primaryphone", "workphone", "businessphone", "homephone"),
    ),
    "company": ("company", "companyname", "organization", "organisation", "organizationname", "org", "employer"),
    "title": ("jobtitle", "title", "position", "role", "organizationtitle"),
    "notes": ("notes", "note", "comments", "comment"),
}
# Where a product's columns mean something else than the common names guess: Outlook's "Title"
# is the honorific (Mr., Ms.), its job title "Job Title", and its "Primary Phone" comes first.
# Google's columns (current: "Organization Name/Title", legacy: "Organization 1 - Name/Title")
# and ours need no override: their honorific is "Name Prefix", which no role reads.
LAYOUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "outlook": {
        **COMMON,
        "title": ("jobtitle",),
        "phone": (
            *("primaryphone", "mobilephone", "businessphone", "homephone", "companymainphone", "otherphone"),
            *("businessphone2", "homephone2", "carphone", "radiophone", "callback", "assistantsphone"),
        ),
    },
}
# Repeated column groups: (role, value column pattern, label columns for group n).
NUMBERED = (
    ("email", re.compile(r"^email(\d+)(?:value|address)?$"), ("email{}label", "email{}type")),
    ("phone", re.compile(r"^phone(\d+)(?:value|number)?$"), ("phone{}label", "phone{}type")),
    ("company", re.compile(r"^organization(\d+)name$"), ("organization{}label", "organization{}type")),
    ("title", re.compile(r"^organization(\d+)title$"), ("organization{}label", "organization{}type")),
)
MAPPING_HINT = (
    "Name the columns with the mapping parameter, a JSON object from our field to your column, e.g. "
    'mapping={"first_name": "Vorname", "last_name": "Nachname", "email": "E-Mail"} '
    f"(fields: {', '.join(MAPPABLE)})."
)


@dataclass(frozen=True)
class Source:
    """One column a role reads, and the column whose text marks its value preferred."""

    value: int
    label: int | None = None


Columns = dict[str, list[Source]]


def key(header: str) -> str:
    """A column name compared by letters and digits only: 'E-mail 1 - Value' -> 'email1value'."""
    return "".join(ch for ch in header.casefold() if ch.isalnum())


def read_csv(text: str, mapping: dict[str, str] | None) -> list[Record]:
    """The file's records in file order. Raises BadRequest for a file without a header, without a
    name or email column (and no mapping), or with a mapping naming a column it lacks."""
    rows = _rows(text)
    header = next(rows, None)
    if header is None or not any(cell.strip() for cell in header[1]):
        raise BadRequest("The CSV file has no header row: its first line must name the columns.")
    names = [cell.strip() for cell in header[1]]
    columns = _columns(names, mapping)
    return [_record(number, cells, columns) for number, cells in rows if any(cell.strip() for cell in cells)]


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(spreadsheet row number, cells) per record; the header is row 1."""
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count) if first_line.count(",") == 0 else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BadRequest(f"The CSV file cannot be read at row {number + 1}: {exc}.") from exc
        number += 1
        yield number, cells


def _columns(names: list[str], mapping: dict[str, str] | None) -> Columns:
    keys = [key(name) for name in names]
    layout = detect(keys)
    columns: Columns = {role: _sources(keys, role, aliases) for role, aliases in LAYOUTS.get(layout, COMMON).items()}
    for field, header in (mapping or {}).items():
        columns[MAPPABLE[field]] = [Source(_mapped(names, keys, field, header))]
    if not mapping and not any(columns[role] for role in ("given", "family", "display", "email")):
        found = ", ".join(repr(name) for name in names[:30] if name) + (", ..." if len(names) > 30 else "")
        looks = " It looks like a vCard: send it with format=vcard." if "beginvcard" in keys[:1] else ""
        raise BadRequest(f"No name or email column recognised among the file's columns: {found}.{looks} {MAPPING_HINT}")
    return columns


def detect(keys: list[str]) -> str:
    """'outlook' for Outlook's header set, else 'common': Google's (current and legacy) and ours read
    by the common names and the numbered groups alone."""
    present = set(keys)
    if {"firstname", "lastname"} <= present and {"emailaddress", "emaildisplayname", "jobtitle"} & present:
        return "outlook"
    return "common"


def _sources(keys: list[str], role: str, aliases: Iterable[str]) -> list[Source]:
    """The columns a role reads, in preference order: named columns, then numbered groups by number."""
    sources = [Source(keys.index(alias)) for alias in aliases if alias in keys]
    numbered: list[tuple[int, Source]] = []
    for numbered_role, pattern, labels in NUMBERED:
        if numbered_role != role:
            continue
        for index, k in enumerate(keys):
            match = pattern.fullmatch(k)
            if match and index not in {s.value for s in sources}:
                label = next((keys.index(lab.format(match[1])) for lab in labels if lab.format(match[1]) in keys), None)
                numbered.append((int(match[1]), Source(index, label)))
    return sources + [source for _, source in sorted(numbered, key=lambda pair: pair[0])]


def _mapped(names: list[str], keys: list[str], field: str, header: str) -> int:
    if header.strip() in names:
        return names.index(header.strip())
    if key(header) and key(header) in keys:
        return keys.index(key(header))
    found = ", ".join(repr(name) for name in names if name)
    raise BadRequest(
        f"mapping names the column {header!r} for {field}, but the file has no such column; its columns: {found}."
    )


def _record(row: int, cells: list[str], columns: Columns) -> Record:
    def cell(index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def first(role: str) -> str:
        return next((cell(s.value) for s in columns.get(role, []) if cell(s.value)), "")

    company = _preferred(columns.get("company", []), cell)
    parts = NameParts(given=first("given"), family=first("family"), display=first("display"), organization=company)
    fields, errors = name_fields(parts, row)
    for field, role in (("email", "email"), ("phone", "phone"), ("company", "company"), ("title", "title")):
        value = company if role == "company" else _preferred(columns.get(role, []), cell)
        if value:
            fields[field] = value
    note = first("notes")
    return Record(row=row, fields=fields, notes=[note] if note else [], errors=errors)


def _preferred(sources: list[Source], cell: Callable[[int | None], str]) -> str:
    """The value whose label starts with '*' (Google's mark of the preferred one), else the first."""
    values: list[tuple[bool, str]] = []
    for source in sources:
        preferred = cell(source.label).startswith("*")
        for part in cell(source.value).split(MULTI_VALUE.strip()):
            if part.strip():
                values.append((preferred, part.strip()))
    return next((value for preferred, value in values if preferred), values[0][1] if values else "")
