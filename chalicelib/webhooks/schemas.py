"""Request and response shapes of /webhooks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from chalicelib.schemas import Text200, _Input, _Model
from chalicelib.webhooks.urls import MAX_URL_CHARS

# The change events (issue #17's contract) an endpoint may subscribe to; "*" is all of them.
EVENT_TYPES = (
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "note.created",
    "note.updated",
    "note.deleted",
)
TEST_EVENT = "webhook.test"  # sent by POST /webhooks/{id}/test only, whatever the subscription
EventType = Literal[
    "*", "contact.created", "contact.updated", "contact.deleted", "note.created", "note.updated", "note.deleted"
]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


def _distinct(events: list[str]) -> list[str]:
    """Duplicates dropped, "*" alone when sent (it already means every type)."""
    return ["*"] if "*" in events else sorted(set(events))


Events = Annotated[
    list[EventType],
    Field(min_length=1, max_length=len(EVENT_TYPES) + 1, examples=[["contact.created", "note.created"]]),
    AfterValidator(_distinct),
]
Url = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_URL_CHARS),
    Field(
        examples=["https://hooks.example.com/contact-notes"],
        description="https:// to a public host name (the local stage also takes http://127.0.0.1 or localhost).",
        json_schema_extra={"format": "uri"},
    ),
]


class WebhookIn(_Input):
    """POST /webhooks."""

    url: Url
    events: Events
    description: Text200 = Field(default=None, examples=["CRM sync"])


def _patch_schema(schema: dict[str, Any]) -> None:
    schema["minProperties"] = 1


class WebhookPatch(_Input):
    """PATCH /webhooks/{id}: only the fields sent change; `enabled: true` re-enables a disabled
    endpoint (its failure count starts again), `false` pauses it; null clears the description."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    url: Url | None = None
    events: Events | None = None
    description: Text200 = Field(default=None, examples=["CRM sync (paused while the CRM migrates)"])
    enabled: bool | None = Field(default=None, examples=[True])


class WebhookOut(_Model):
    id: str
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="Why deliveries stopped (admins see it to fix the endpoint).")
    disabled_at: str | None
    failures_in_a_row: int = Field(description="Deliveries in a row that failed for good (after all retries).")
    created_at: str
    updated_at: str
    version: int


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret (Standard Webhooks: whsec_ and base64). Shown only in this answer: keep it."
    )


class WebhookPage(_Model):
    items: list[WebhookOut]
    next_cursor: str | None


class DeliveryOut(_Model):
    id: str = Field(description="The event's id: the webhook-id header of every attempt.")
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = Field(description="The endpoint's last answer (none: no answer, see last_error).")
    last_error: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    created_at: str
    updated_at: str


class DeliveryPage(_Model):
    items: list[DeliveryOut] = Field(description="Newest first.")
    next_cursor: str | None
