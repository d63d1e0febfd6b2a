"""Import (#15): a file of contacts (CSV, vCard, our JSON export) into the token's workspace."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.api.routing import ApiBlueprint
from chalicelib.errors import UnsupportedMediaType
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.transfer.parse import Format, sniff
from chalicelib.transfer.records import MAX_BYTES
from chalicelib.transfer.schemas import IMPORT_DESCRIPTION, ImportQuery, ImportReport
from chalicelib.web import json_response, media_type, raw_body

imports_api = ApiBlueprint(__name__)

# What a file's Content-Type says its format is (?format= overrides it, whatever the type).
FORMAT_OF: dict[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/comma-separated-values": "csv",
    "text/vcard": "vcard",
    "text/x-vcard": "vcard",
    "text/directory": "vcard",
    "application/json": "json",
}
# On API Gateway these arrive base64-encoded (template's BinaryMediaTypes), so a UTF-16 or
# Windows-1252 file reaches the view byte for byte; locally Chalice hands the bytes over as they came.
# The document lists only application/octet-stream (the format then named by ?format= or read from
# the file's first bytes): openapi-python-client (0.29.1) generates no function at all for an
# operation whose body lists text/csv or text/vcard ("Unsupported content type"); the description
# names the other types, which the server reads as well.
FILE_TYPES = ("application/octet-stream",)


@imports_api.operation(
    "/imports",
    ["POST"],
    Operation(
        "Import contacts from a file",
        "import and export",
        response=ImportReport,
        query=ImportQuery,
        body_media="file",
        file_types=FILE_TYPES,
        role="editor",
        operation_id="importContacts",
        idempotent=True,
        description=IMPORT_DESCRIPTION,
        problems=(400, 413, 415),
    ),
    content_types=["*/*"],
)
def import_contacts() -> Response:
    from chalicelib.transfer.imports import run_import
    from chalicelib.transfer.parse import parse

    request = imports_api.request
    query = imports_api.query(ImportQuery)
    media = media_type(request)
    body = raw_body(request, MAX_BYTES, " Split the file (`contact-notes import` does that for you).")
    declared = FORMAT_OF.get(media)
    if query.format and declared and query.format != declared:
        raise UnsupportedMediaType(
            f"The body is declared as {media} but ?format={query.format}: send the file's own Content-Type "
            "(or a neutral one such as application/octet-stream) with ?format=."
        )
    fmt: Format | None = query.format or declared
    if fmt is None and media == "application/octet-stream":
        fmt = sniff(body)
    if fmt is None:
        raise UnsupportedMediaType(
            f"Send the file as text/csv, text/vcard, application/json (this API's JSON export) or "
            f"application/octet-stream, or name its format with ?format=csv|vcard|json; "
            f"not {media or 'without a Content-Type'}."
        )
    records = parse(body, fmt, query.mapping_object())
    report = run_import(
        settings(),
        imports_api.owner(),
        records,
        on_conflict=query.on_conflict,
        dry_run=query.dry_run,
        shared=imports_api.shared(),
        actor=imports_api.user(),
    )
    return json_response(report)
