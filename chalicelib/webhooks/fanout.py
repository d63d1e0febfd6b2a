"""The audit table's stream, read for webhooks: each event becomes one delivery per endpoint that wants it.

Per INSERT record (an event; MODIFY and REMOVE, the TTL's expiry, are not events): one Query of the
event's workspace's endpoints (nothing is cached, so no workspace ever sees another's), then for
each enabled endpoint subscribed to the event's type ("*" is every type) a delivery put on the
condition that none exists for (endpoint, event id), and its first attempt queued. A replayed
record finds its deliveries there and queues nothing again (unless its first attempt was never
made: see deliveries.queue_delivery). Events whose actor is "system" (the normalizer's own
write-back, should one be recorded) are not delivered.

Failures are reported per record (batchItemFailures); the event source mapping in
infra/template.json bisects, retries a bounded number of times, then sends the record to the
webhooks' fan-out dead-letter queue.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from chalicelib import observability
from chalicelib.config import Settings
from chalicelib.models import WebhookEndpoint
from chalicelib.stream_batches import process_records
from chalicelib.webhooks import deliveries, store

logger = logging.getLogger("contact_notes.webhooks")

SYSTEM_ACTOR = "system"


def event_text(record: DynamoDBRecord) -> str | None:
    """The event an audit record carries (JSON text), or None: not an event to deliver."""
    if record.event_name != DynamoDBRecordEventName.INSERT or record.dynamodb is None:
        return None
    image: dict[str, Any] = record.dynamodb.new_image or {}
    text = image.get("event")
    if not isinstance(text, str):
        raise ValueError("an audit record without its event")
    return text


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    events = list(endpoint.events or [])
    return bool(endpoint.enabled) and ("*" in events or event_type in events)


def fan_out(settings: Settings, text: str) -> int:
    """Queue the event for every endpoint of its workspace that wants it; the number queued anew."""
    event = json.loads(text)
    if event.get("actor_id") == SYSTEM_ACTOR:
        return 0
    workspace_id, event_id, event_type = str(event["workspace_id"]), str(event["id"]), str(event["type"])
    body = text.encode()
    queued = 0
    for endpoint in store.endpoints_of(workspace_id):
        if not wants(endpoint, event_type):
            continue
        delivery = deliveries.new_delivery(settings, workspace_id, endpoint.webhook_id, event_id, event_type, body)
        queued += deliveries.queue_delivery(settings, delivery)
    if queued:
        observability.count("WebhookDeliveriesQueued", queued)
    return queued


def handle_batch(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """Entry point for the stream Lambda: returns {"batchItemFailures": [...]}."""

    def handle_record(record: DynamoDBRecord) -> None:
        text = event_text(record)
        if text is not None:
            fan_out(settings, text)

    return process_records(event, context, handle_record)
