"""The rules behind /webhooks: who may (the routes check admin), what is valid, what is shown.

Every endpoint is addressed by (workspace, id): another workspace's id answers 404, as a missing
one. The signing secret is shown in the creation's answer only, and never logged.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from pynamodb.expressions.update import Action

from chalicelib.config import Settings
from chalicelib.errors import Conflict, NotFound, ValidationFailed
from chalicelib.ids import is_valid_id, new_id, utc_now
from chalicelib.models import WebhookEndpoint
from chalicelib.pagination import decode_cursor, encode_cursor
from chalicelib.schemas import PageQuery
from chalicelib.webhooks import deliveries, store, urls
from chalicelib.webhooks.schemas import (
    TEST_EVENT,
    DeliveryOut,
    DeliveryPage,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 (Standard Webhooks' prefix, not a secret)
SECRET_BYTES = 32
EVENT_PREFIX = "evt_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def checked_url(settings: Settings, url: str) -> str:
    """The URL, if a delivery may go there (chalicelib.webhooks.urls); else a 422 naming #/url."""
    try:
        urls.check(url, settings)
    except urls.Refused as refused:
        raise ValidationFailed(
            f"The webhook URL is refused: {refused}.",
            errors=[{"pointer": "#/url", "detail": str(refused), "type": "url_refused"}],
        ) from None
    return url


def webhook_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.webhook_id,
        url=str(endpoint.url),
        events=list(endpoint.events or []),
        description=endpoint.description,
        enabled=bool(endpoint.enabled),
        disabled_reason=endpoint.disabled_reason,
        disabled_at=endpoint.disabled_at,
        failures_in_a_row=int(endpoint.failures or 0),
        created_at=str(endpoint.created_at),
        updated_at=str(endpoint.updated_at),
        version=int(endpoint.version or 1),
    )


def _existing(workspace_id: str, webhook_id: str) -> WebhookEndpoint:
    """One GetItem; 404 for an id that is not ours (or not an id at all: no call then)."""
    found = store.get_endpoint(workspace_id, webhook_id) if is_valid_id(webhook_id) else None
    if found is None:
        raise NotFound("Webhook not found.")
    return found


def create(settings: Settings, workspace_id: str, user_id: str, data: WebhookIn) -> WebhookCreated:
    now = utc_now()
    endpoint = WebhookEndpoint(
        workspace_id,
        new_id(),
        url=checked_url(settings, data.url),
        events=list(data.events),
        description=data.description,
        secret=new_secret(),
        enabled=True,
        failures=0,
        created_by=user_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    store.create_endpoint(endpoint)
    return WebhookCreated(**webhook_out(endpoint).model_dump(), secret=str(endpoint.secret))


def get(workspace_id: str, webhook_id: str) -> WebhookOut:
    return webhook_out(_existing(workspace_id, webhook_id))


def list_webhooks(settings: Settings, workspace_id: str, query: PageQuery) -> WebhookPage:
    after = None
    if query.cursor is not None:  # "" too: not a cursor this API issued (400)
        after = decode_cursor(settings.signing_secret, workspace_id, "webhooks", query.cursor)
    found = store.list_endpoints(workspace_id, query.limit + 1, after)
    more = len(found) > query.limit
    found = found[: query.limit]
    cursor = encode_cursor(settings.signing_secret, workspace_id, "webhooks", found[-1].webhook_id) if more else None
    return WebhookPage(items=[webhook_out(e) for e in found], next_cursor=cursor)


_REQUIRED = ("url", "events", "enabled")  # may change, not be removed


def update(settings: Settings, workspace_id: str, webhook_id: str, data: WebhookPatch) -> WebhookOut:
    if not is_valid_id(webhook_id):
        raise NotFound("Webhook not found.")
    sent = data.model_fields_set
    if not sent:
        raise ValidationFailed("Send at least one field to change.")
    nulls = [name for name in _REQUIRED if name in sent and getattr(data, name) is None]
    if nulls:
        raise ValidationFailed(
            "These fields cannot be removed.",
            errors=[{"pointer": f"#/{name}", "detail": "must not be null", "type": "not_null"} for name in nulls],
        )
    now = utc_now()
    actions: list[Action] = [WebhookEndpoint.updated_at.set(now)]
    if data.url is not None:
        actions.append(WebhookEndpoint.url.set(checked_url(settings, data.url)))
    if data.events is not None:
        actions.append(WebhookEndpoint.events.set(list(data.events)))  # type: ignore[arg-type]  # PynamoDB types list elements as attributes
    if "description" in sent:
        description = WebhookEndpoint.description
        actions.append(description.remove() if data.description is None else description.set(data.description))
    if data.enabled is True:  # deliveries start again, and the count of failures with them
        actions += [WebhookEndpoint.enabled.set(True), WebhookEndpoint.failures.set(0)]
        actions += [WebhookEndpoint.disabled_reason.remove(), WebhookEndpoint.disabled_at.remove()]
    elif data.enabled is False:
        actions += [WebhookEndpoint.enabled.set(False), WebhookEndpoint.disabled_at.set(now)]
        actions.append(WebhookEndpoint.disabled_reason.set(f"Disabled by a workspace admin at {now}."))
    return webhook_out(store.update_endpoint(workspace_id, webhook_id, actions))


def delete(workspace_id: str, webhook_id: str) -> None:
    if not is_valid_id(webhook_id):
        raise NotFound("Webhook not found.")
    store.delete_endpoint(workspace_id, webhook_id)


def send_test(settings: Settings, workspace_id: str, webhook_id: str, user_id: str) -> DeliveryOut:
    """Queue a `webhook.test` event to one endpoint, whatever it subscribes to: a GetItem, a PutItem
    and a SendMessage. A disabled endpoint is a 409 (re-enable it first)."""
    endpoint = _existing(workspace_id, webhook_id)
    if not endpoint.enabled:
        raise Conflict('The webhook is disabled; PATCH it with {"enabled": true} first.')
    event = test_event(workspace_id, webhook_id, user_id)
    body = json.dumps(event, separators=(",", ":")).encode()
    delivery = deliveries.new_delivery(settings, workspace_id, webhook_id, event["id"], TEST_EVENT, body)
    deliveries.queue_delivery(settings, delivery)
    return deliveries.delivery_out(delivery)


def test_event(workspace_id: str, webhook_id: str, user_id: str) -> dict[str, Any]:
    occurred = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {
        "id": EVENT_PREFIX + new_id(),
        "type": TEST_EVENT,
        "occurred_at": occurred,
        "workspace_id": workspace_id,
        "actor_id": user_id,
        "resource_id": webhook_id,
        "data": {"webhook_id": webhook_id, "message": "A test delivery from Contact Notes."},
    }


def list_deliveries(settings: Settings, workspace_id: str, webhook_id: str, query: PageQuery) -> DeliveryPage:
    """The endpoint's GetItem (404 when not ours), then one Query of its deliveries, newest first."""
    _existing(workspace_id, webhook_id)
    scope = f"webhooks/{webhook_id}/deliveries"
    after = None
    if query.cursor is not None:
        after = EVENT_PREFIX + decode_cursor(settings.signing_secret, workspace_id, scope, query.cursor)
    found = store.list_deliveries(workspace_id, webhook_id, query.limit + 1, after)
    more = len(found) > query.limit
    found = found[: query.limit]
    cursor = None
    if more:
        cursor = encode_cursor(
            settings.signing_secret, workspace_id, scope, found[-1].event_id.removeprefix(EVENT_PREFIX)
        )
    return DeliveryPage(items=[deliveries.delivery_out(d) for d in found], next_cursor=cursor)
