"""Cutting an import file into requests the API accepts, and knowing where each started.

Every part is a file of its own (CSV: the header repeated; JSON: the document's other keys
kept) of at most `max_rows` rows and `max_bytes` bytes, re-encoded as UTF-8. A part's `offset`
is how many rows of the file came before it: the server numbers the rows of each request from
the start, so the file's row is the request's row plus the offset.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("csv", "vcard", "json")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "vcard": "text/vcard; charset=utf-8",
    "json": "application/json",
}
EXTENSIONS = {".csv": "csv", ".vcf": "vcard", ".vcard": "vcard", ".json": "json"}
DEFAULT_ROWS = 1_000
DEFAULT_BYTES = 4 * 1024 * 1024


class SplitError(ValueError):
    """The file cannot be read as the format says."""


@dataclass(frozen=True)
class Part:
    body: bytes
    rows: int
    offset: int  # rows of the file before this part


def format_of(path: Path) -> str | None:
    return EXTENSIONS.get(path.suffix.lower())


def decode(raw: bytes) -> str:
    """Text as the server reads it: a BOM names the encoding (UTF-8, UTF-16), else UTF-8, else
    cp1252 (what spreadsheets on Windows save)."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(encoding)
            except UnicodeDecodeError as error:
                raise SplitError(f"not {encoding.upper()} though it starts with its byte order mark") from error
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def split(raw: bytes, fmt: str, max_rows: int = DEFAULT_ROWS, max_bytes: int = DEFAULT_BYTES) -> list[Part]:
    if fmt == "json":
        return _split_json(raw, max_rows, max_bytes)
    text = decode(raw)
    if fmt == "csv":
        header, records = csv_records(text)
        return _packed(header, records, max_rows, max_bytes)
    return _packed("", _vcards(text), max_rows, max_bytes)


def csv_records(text: str) -> tuple[str, list[str]]:
    """The header line and each record's own text, cut by the csv module: a quoted field may
    hold line breaks, so a record is not a line."""
    lines = io.StringIO(text, newline="")  # keeps \r\n, \r and \n as they are
    taken: list[str] = []

    def feed() -> Iterator[str]:
        for line in lines:
            taken.append(line)
            yield line

    records: list[str] = []
    try:
        for _ in csv.reader(feed()):
            records.append("".join(taken))
            taken.clear()
    except csv.Error as error:
        raise SplitError(f"not CSV near record {len(records) + 1}: {error}") from error
    if not records:
        raise SplitError("the file is empty: a CSV import needs a header line")
    header = records.pop(0)
    if not header.endswith(("\n", "\r")):
        header += "\r\n"
    if records and not records[-1].endswith(("\n", "\r")):
        records[-1] += "\r\n"
    return header, records


def _vcards(text: str) -> list[str]:
    """Each card's text, cut after every END:VCARD (anything before a BEGIN:VCARD stays with
    its card, for the server to judge)."""
    cards: list[str] = []
    current: list[str] = []
    for line in io.StringIO(text, newline=""):
        current.append(line)
        if line.strip().upper() == "END:VCARD":
            cards.append("".join(current))
            current.clear()
    rest = "".join(current)
    if rest.strip():
        cards.append(rest)  # an unfinished card: the server says what is wrong with it
    elif rest and cards:
        cards[-1] += rest
    return cards


def _packed(header: str, records: list[str], max_rows: int, max_bytes: int) -> list[Part]:
    """Records in order, as many per part as the limits allow (one at least)."""
    head = header.encode("utf-8")
    parts: list[Part] = []
    chunk: list[bytes] = []
    size = len(head)
    offset = 0
    for record in records:
        encoded = record.encode("utf-8")
        if chunk and (len(chunk) >= max_rows or size + len(encoded) > max_bytes):
            parts.append(Part(head + b"".join(chunk), len(chunk), offset))
            offset += len(chunk)
            chunk, size = [], len(head)
        chunk.append(encoded)
        size += len(encoded)
    if chunk or not parts:
        parts.append(Part(head + b"".join(chunk), len(chunk), offset))
    return parts


def _split_json(raw: bytes, max_rows: int, max_bytes: int) -> list[Part]:
    try:
        document = json.loads(decode(raw))
    except ValueError as error:
        raise SplitError(f"not JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("contacts"), list):
        raise SplitError('not a contact-notes JSON document: no "contacts" array')
    rest = {key: value for key, value in document.items() if key != "contacts"}
    envelope = len(json.dumps({**rest, "contacts": []}, ensure_ascii=False).encode("utf-8"))
    contacts = [json.dumps(contact, ensure_ascii=False).encode("utf-8") for contact in document["contacts"]]
    parts: list[Part] = []
    start = 0
    while start < len(contacts) or not parts:
        end, size = start, envelope
        while end < len(contacts) and (
            end == start or (end - start < max_rows and size + len(contacts[end]) + 1 <= max_bytes)
        ):
            size += len(contacts[end]) + 1
            end += 1
        body = {**rest, "contacts": document["contacts"][start:end]}
        parts.append(Part(json.dumps(body, ensure_ascii=False).encode("utf-8"), end - start, start))
        start = end
    return parts
