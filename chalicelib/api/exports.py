"""Export (#15): the token's workspace's contacts, a page at a time, as CSV, vCard or the JSON backup."""

from __future__ import annotations

from urllib.parse import urlencode

from chalice.app import Response

from chalicelib.api.routing import ApiBlueprint
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.schemas import ExportPage, ExportQuery

exports_api = ApiBlueprint(__name__)

LINK = 'The next page: <URL>; rel="next" (RFC 8288), while more remain.'
DISPOSITION = 'attachment; filename="contacts.csv" (.vcf, .json).'


@exports_api.operation(
    "/exports",
    ["GET"],
    Operation(
        "Export contacts (JSON with their notes, CSV or vCard)",
        "import and export",
        response=ExportPage,
        query=ExportQuery,
        operation_id="exportContacts",
        also_as=("text/csv", "text/vcard"),
        success_headers=(("Link", LINK), ("Content-Disposition", DISPOSITION)),
        description=(
            "One page of up to 1,000 contacts, newest first, in the format asked for; while more remain, "
            'a `Link: <...>; rel="next"` header (and, in JSON, `next_cursor`) names the next page. '
            "A page ends early (fewer contacts) when its body would pass 4 MB. JSON is the lossless "
            "backup: every field, and each contact's notes oldest first; importing it (POST /imports) "
            "into an empty workspace restores every contact and note (with new ids). CSV "
            "(`text/csv`, RFC 4180, UTF-8, CRLF) has its header on every page, so any page stands "
            "alone; vCard is 3.0 (RFC 2426) without the notes. Values are written as stored: a "
            "spreadsheet may read a CSV value that starts with = + - or @ as a formula."
        ),
    ),
)
def export_contacts() -> Response:
    from chalicelib.transfer.exports import export_page  # only exports load the formats

    query = exports_api.query(ExportQuery)
    page = export_page(settings(), exports_api.owner(), query)
    headers: dict[str, str | list[str]] = {
        "Content-Type": page.media_type,
        "Content-Disposition": f'attachment; filename="{page.filename}"',
    }
    if page.next_cursor is not None:
        headers["Link"] = f'<{_path()}?{urlencode({"format": query.format, "cursor": page.next_cursor})}>; rel="next"'
    return Response(body=page.body, status_code=200, headers=headers)


def _path() -> str:
    """The path the client called: behind API Gateway's execute-api URL it starts with the stage
    ("/api/api/v1/exports"), which the request's own path leaves out."""
    request = exports_api.request
    return str(request.context.get("path") or request.path)
