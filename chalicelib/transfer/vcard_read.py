"""Reading vCard 3.0 and 4.0 files (and 2.1, as far as vobject reads it) into records, one per card.

Cards are cut apart here and each is read by vobject on its own, so one broken card is a row
error, not a refused file. Before vobject sees a card: folded lines are unfolded, photos (and
logos, sounds, keys) are dropped (never imported, and a bad base64 photo would fail the card),
and the `\\:` some Apple exports write is unescaped (vobject leaves it alone). The preferred
email and phone win: vCard 4.0's PREF=1 (lowest first), 3.0's TYPE=pref, 2.1's bare PREF.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.errors import BadRequest
from chalicelib.transfer.names import NameParts, name_fields
from chalicelib.transfer.records import Record, RowError

_FOLD = re.compile(r"\n[ \t]")
_ESCAPED_COLON = re.compile(r"\\(.)")  # pairs, so an escaped backslash before ':' stays one
_BINARY = {"PHOTO", "LOGO", "SOUND", "KEY"}
_NOT_PREFERRED = 101  # PREF runs 1 (most preferred) to 100


def read_vcards(text: str) -> list[Record]:
    """One record per card, in file order; row = the card's 1-based number. Raises BadRequest for
    a file without a card."""
    import vobject  # first use only: cold start

    cards = _cards(_FOLD.sub("", text))
    if not cards:
        raise BadRequest("No vCard in the file: a vCard file holds cards from BEGIN:VCARD to END:VCARD.")
    parsed = _read_all(cards, vobject)
    return [_read(number, lines, parsed, vobject) for number, lines in enumerate(cards, start=1)]


def _cards(text: str) -> list[list[str]]:
    """Each card's property lines (BEGIN and END included), binary properties left out."""
    cards: list[list[str]] = []
    card: list[str] | None = None
    for line in text.split("\n"):
        word = line.strip().upper()
        if word == "BEGIN:VCARD":
            card = [line.strip()]
            cards.append(card)
        elif card is not None and line.strip() and _name(line) not in _BINARY:
            card.append(_ESCAPED_COLON.sub(lambda m: ":" if m[1] == ":" else m[0], line))
            if word == "END:VCARD":
                card = None
    for unclosed in cards:  # a card cut short at the end of the file is read as far as it goes
        if unclosed[-1].strip().upper() != "END:VCARD":
            unclosed.append("END:VCARD")
    return cards


def _name(line: str) -> str:
    """A content line's property name without its group: 'item1.EMAIL;type=pref:x' -> 'EMAIL'."""
    head = re.split(r"[;:]", line, maxsplit=1)[0]
    return head.rsplit(".", 1)[-1].strip().upper()


def _read_all(cards: list[list[str]], vobject: Any) -> list[Any] | None:
    """Every card in one pass (half the time of one call per card), or None when one cannot be read."""
    try:
        parsed = list(vobject.readComponents("".join("\r\n".join(lines) + "\r\n" for lines in cards)))
    except Exception:  # one broken card: read them one by one, so only it is reported
        return None
    return parsed if len(parsed) == len(cards) else None


def _read(number: int, lines: list[str], parsed: list[Any] | None, vobject: Any) -> Record:
    try:
        card = parsed[number - 1] if parsed else vobject.readOne("\r\n".join(lines) + "\r\n")
        return _record(number, card)
    except Exception as exc:  # vobject raises ParseError and assorted decoding errors
        detail = f"Card {number} cannot be read: {exc}"[:300]
        return Record(row=number, errors=[RowError(row=number, detail=detail)])


def _record(number: int, card: Any) -> Record:
    org = _first_value(card, "org")
    organization = (org[0] if org else "") if isinstance(org, list) else str(org or "")
    kind = str(_first_value(card, "kind") or "").strip().lower()
    shown_as = str(_first_value(card, "x-abshowas") or "").strip().upper()
    given, family = _n(card)
    parts = NameParts(
        given=given,
        family=family,
        display=str(_first_value(card, "fn") or ""),
        organization=_text(organization),
        is_organization=kind in {"org", "organization"} or shown_as == "COMPANY",
    )
    fields, errors = name_fields(parts, number)
    values = {
        "email": _preferred(card, "email", "mailto:"),
        "phone": _preferred(card, "tel", "tel:"),
        "company": parts.organization,
        "title": next((_text(p.value) for p in card.contents.get("title", []) if _text(p.value)), ""),
    }
    fields.update({field: value for field, value in values.items() if value})
    notes = [_text(p.value) for p in card.contents.get("note", []) if _text(p.value)]
    return Record(row=number, fields=fields, notes=notes, errors=errors)


def _first_value(card: Any, name: str) -> Any:
    props = card.contents.get(name, [])
    return props[0].value if props else None


def _n(card: Any) -> tuple[str, str]:
    """Given and family name from N (vobject's Name: each part a string or a list of them)."""
    value = _first_value(card, "n")
    if value is None or isinstance(value, str):
        return "", ""
    return _text(value.given), _text(value.family)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(_text(part) for part in value if _text(part))
    return str(value or "").replace("\r\n", "\n").strip()


def _preferred(card: Any, name: str, scheme: str) -> str:
    """The most preferred non-empty value of a property (email, tel); the first among equals."""
    ranked = []
    for position, prop in enumerate(card.contents.get(name, [])):
        value = str(prop.value or "").strip()
        if value.lower().startswith(scheme):
            value = value[len(scheme) :].strip()
        if value:
            ranked.append((_rank(prop), position, value))
    return min(ranked)[2] if ranked else ""


def _rank(prop: Any) -> int:
    """4.0 PREF=n is n; 3.0 TYPE=pref and 2.1's bare PREF are 1; no mark is last."""
    pref = prop.params.get("PREF")
    if pref:
        try:
            return max(1, min(int(pref[0]), 100))
        except ValueError:
            return 1
    types = {part.strip().lower() for value in prop.params.get("TYPE", []) for part in value.split(",")}
    singletons = {str(s).lower() for s in getattr(prop, "singletonparams", [])}
    return 1 if "pref" in types | singletons else _NOT_PREFERRED
