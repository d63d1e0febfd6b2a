"""The name rules every file reader shares: from what a file says of a name to first and last name.

Files name people in several ways: given and family name (vCard `N`, CSV First/Last Name), only a
display name (vCard `FN` without `N`, a CSV `Name` column), or only an organization. A contact
needs a first name, so:
- an organization's own card keeps the organization's name whole as the first name;
- a given name is the first name, the family name the last;
- only a display name: split into given and family name ("Ada Lovelace", "Lovelace, Ada");
- else the family name alone (as first name), else the organization's name, else a row error.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.transfer.records import RowError

NO_NAME = "No name: the record has no given, family or display name and no organization to name it by."


@dataclass(frozen=True)
class NameParts:
    """What a record says of its name; empty strings are absent values."""

    given: str = ""
    family: str = ""
    display: str = ""
    organization: str = ""
    is_organization: bool = False  # vCard KIND:org, Apple's X-ABShowAs:COMPANY


def split_display_name(display: str) -> tuple[str, str]:
    """'Ada King Lovelace' -> ('Ada King', 'Lovelace'); 'Lovelace, Ada' -> ('Ada', 'Lovelace');
    a single word is a given name."""
    family, comma, given = display.partition(",")
    if comma and family.strip() and given.strip():
        return " ".join(given.split()), " ".join(family.split())
    words = display.split()
    if len(words) < 2:
        return " ".join(words), ""
    return " ".join(words[:-1]), words[-1]


def name_fields(parts: NameParts, row: int) -> tuple[dict[str, str], list[RowError]]:
    """first_name (and last_name when there is one) by the rules above, or the row error."""
    given, family = parts.given.strip(), parts.family.strip()
    display, organization = parts.display.strip(), parts.organization.strip()
    if parts.is_organization and (organization or display):
        return {"first_name": organization or display}, []
    if not given and not family and display:
        given, family = split_display_name(display)
    if given:
        return ({"first_name": given, "last_name": family} if family else {"first_name": given}), []
    if family:
        return {"first_name": family}, []
    if organization:
        return {"first_name": organization}, []
    return {}, [RowError(row=row, detail=NO_NAME, field="first_name")]
