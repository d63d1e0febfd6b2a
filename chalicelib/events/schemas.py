"""Request and response shapes of the audit log's reads (GET /audit, GET /contacts/{id}/history)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from chalicelib.ids import ULID_PATTERN
from chalicelib.schemas import _Model

EventType = Literal[
    "contact.created", "contact.updated", "contact.deleted", "note.created", "note.updated", "note.deleted"
]
_CURSOR_PATTERN = "^[A-Za-z0-9_-]{1,128}$"
_ACTOR_PATTERN = "^[A-Za-z0-9_-]{1,64}$"
_WITHIN_PAGE = (
    "Filters an index cannot key (all but the first of resource_id, actor_id; always `type`) are "
    "applied within the page read, so a page may hold fewer than `limit` events, even none, while "
    "`next_cursor` goes on: follow it until it is null. `filtered_within_page` names them."
)


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)")


def _instant(value: Any) -> datetime:
    """An RFC 3339 date-time with its offset (what `format: date-time` means), nothing looser:
    pydantic alone would also read numbers as Unix times and accept naive times."""
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be an RFC 3339 date-time with a time zone, e.g. 2026-12-04T09:30:00Z")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    text = f"{year}-{month}-{day}T{hour}:{minute}:{min(int(second), 59):02d}.{micros}"  # a leap second: :59
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(text + zone).astimezone(UTC)
    except ValueError:
        if year == "0000":  # valid RFC 3339, before Python's first year: before any event anyway
            return datetime.min.replace(tzinfo=UTC)
        raise ValueError("is not a date-time that exists") from None


Instant = Annotated[datetime, BeforeValidator(_instant)]


class _Window(_Model):
    model_config = ConfigDict(extra="ignore")

    since: Instant | None = Field(
        default=None, description="Only events at or after this instant (RFC 3339, with its offset)."
    )
    until: Instant | None = Field(
        default=None, description="Only events at or before this instant. Before `since`: no events."
    )
    limit: int = Field(default=50, ge=1, le=100, description="Events read for this page (at most).")
    cursor: str | None = Field(default=None, json_schema_extra={"pattern": _CURSOR_PATTERN})


class AuditQuery(_Window):
    resource_id: str | None = Field(default=None, description="One contact's or note's events.", pattern=ULID_PATTERN)
    actor_id: str | None = Field(default=None, description="One user's changes.", pattern=_ACTOR_PATTERN)
    type: EventType | None = Field(default=None, description="One type of event.")


class HistoryQuery(_Window):
    type: EventType | None = Field(default=None, description="One type of event.")


class EventOut(_Model):
    id: str = Field(description="Unique and stable: a redelivered event has the same id (deduplicate by it).")
    type: EventType
    occurred_at: str = Field(description="When the change was made (UTC, ISO 8601).")
    workspace_id: str
    actor_id: str = Field(description='The user who made the change ("unknown" for items last written before events).')
    resource_id: str = Field(description="The contact or note changed.")
    contact_id: str = Field(description="The contact, or the note's contact.")
    changes: dict[str, list[Any]] | None = Field(
        default=None, description="Updates only: each changed field's [old, new] value."
    )
    data: dict[str, Any] | None = Field(
        default=None, description="The resource as the API returns it after the change; absent for deletes."
    )
    omitted: list[str] | None = Field(
        default=None, description="Texts left out to keep the event under 300 KB (e.g. changes.body)."
    )


class EventPage(_Model):
    items: list[EventOut] = Field(description="Newest first.")
    next_cursor: str | None
    filtered_within_page: list[str] = Field(description=_WITHIN_PAGE)


DESCRIPTION = _WITHIN_PAGE
