"""One entry point from a request's bytes to records, whatever the format."""

from __future__ import annotations

from typing import Literal

from chalicelib.transfer.records import Record

Format = Literal["csv", "vcard", "json"]
FORMATS: tuple[Format, ...] = ("csv", "vcard", "json")


def parse(body: bytes, fmt: Format, mapping: dict[str, str] | None = None) -> list[Record]:
    """The file's records, in file order. Raises BadRequest (400) for a file that cannot be read
    at all (an encoding none of the supported ones fits, not CSV/vCard/JSON at all)."""
    if fmt == "json":
        from chalicelib.transfer.backup import read_backup

        return read_backup(body)
    from chalicelib.transfer.text import decode_text

    text = decode_text(body)
    if fmt == "csv":
        from chalicelib.transfer.csv_read import read_csv

        return read_csv(text, mapping)
    from chalicelib.transfer.vcard_read import read_vcards

    return read_vcards(text)


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def sniff(body: bytes) -> Format:
    """The format of a file sent without one (application/octet-stream, no ?format=): a vCard
    begins with BEGIN:VCARD, our JSON export with "{"; anything else is read as CSV."""
    head, encoding = body[:64], "latin-1"
    for bom, named in _BOMS:
        if head.startswith(bom):
            head, encoding = head[len(bom) :], named
            break
    start = head.decode(encoding, errors="ignore").lstrip().upper()
    if start.startswith("BEGIN:VCARD"):
        return "vcard"
    return "json" if start.startswith("{") else "csv"
