"""The audit log's reads (#17): a workspace's change events, and one contact's history."""

from __future__ import annotations

from typing import Any

from chalice.app import Response

from chalicelib.api.routing import ApiBlueprint
from chalicelib.errors import NotFound
from chalicelib.events.schemas import DESCRIPTION, AuditQuery, EventPage, HistoryQuery
from chalicelib.ids import is_valid_id
from chalicelib.openapi import Operation
from chalicelib.pagination import decode_cursor, encode_cursor
from chalicelib.runtime import settings
from chalicelib.web import json_response

audit_api = ApiBlueprint(__name__)


@audit_api.operation(
    "/audit",
    ["GET"],
    Operation(
        "The workspace's audit log, newest first",
        "audit",
        response=EventPage,
        query=AuditQuery,
        role="admin",
        operation_id="listAuditEvents",
        description=(
            "Every change to a contact or note: who, when, what changed (old and new values). "
            "Append-only: no route changes or deletes an entry; entries expire after the "
            "retention period (365 days by default). Events appear within seconds of the change "
            "(written from the tables' streams). " + DESCRIPTION
        ),
    ),
)
def list_audit_events() -> Response:
    from chalicelib.events.audit import AuditFilter

    query = audit_api.query(AuditQuery)
    wanted = AuditFilter(
        resource_id=query.resource_id,
        actor_id=query.actor_id,
        types=(query.type,) if query.type else (),
        since=query.since,
        until=query.until,
    )
    return _page(audit_api.owner(), "audit", wanted, query.limit, query.cursor)


@audit_api.operation(
    "/contacts/{contact_id}/history",
    ["GET"],
    Operation(
        "A contact's history: its changes and its notes', newest first",
        "audit",
        response=EventPage,
        query=HistoryQuery,
        operation_id="getContactHistory",
        description=(
            "The audit log's events of this contact and its notes, kept after the contact is "
            "deleted (until they expire). An id with no events answers an empty page. " + DESCRIPTION
        ),
    ),
)
def contact_history(contact_id: str) -> Response:
    from chalicelib.events.audit import AuditFilter

    if not is_valid_id(contact_id):
        raise NotFound("Contact not found.")
    query = audit_api.query(HistoryQuery)
    wanted = AuditFilter(
        contact_id=contact_id, types=(query.type,) if query.type else (), since=query.since, until=query.until
    )
    return _page(audit_api.owner(), "history", wanted, query.limit, query.cursor)


def _page(workspace_id: str, kind: str, wanted: Any, limit: int, cursor: str | None) -> Response:
    """One Query; the cursor is bound to the workspace and to every filter of the request."""
    from chalicelib.events.audit import query
    from chalicelib.events.derive import EVENT_PREFIX

    secret = settings().signing_secret
    scope = "|".join(
        [
            kind,
            wanted.resource_id or "",
            wanted.actor_id or "",
            wanted.contact_id or "",
            ",".join(wanted.types),
            wanted.since.isoformat() if wanted.since else "",
            wanted.until.isoformat() if wanted.until else "",
        ]
    )
    # A list cursor carries an item id (a ULID): an event id is one behind its prefix.
    after = EVENT_PREFIX + decode_cursor(secret, workspace_id, scope, cursor) if cursor is not None else None
    page = query(workspace_id, wanted, limit, after)
    last = page.last_event_id
    next_cursor = encode_cursor(secret, workspace_id, scope, last.removeprefix(EVENT_PREFIX)) if last else None
    return json_response(
        {"items": page.events, "next_cursor": next_cursor, "filtered_within_page": page.filtered_within_page}
    )
