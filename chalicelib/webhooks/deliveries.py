"""A delivery is born: its item (once per event and endpoint), then its first attempt queued."""

from __future__ import annotations

import time
import zlib
from datetime import timedelta

from chalicelib.config import Settings
from chalicelib.ids import utc_now
from chalicelib.models import WebhookDelivery
from chalicelib.webhooks import queue, store
from chalicelib.webhooks.schemas import DeliveryOut


def new_delivery(
    settings: Settings, workspace_id: str, webhook_id: str, event_id: str, event_type: str, body: bytes
) -> WebhookDelivery:
    now = utc_now()
    return WebhookDelivery(
        store.delivery_key(workspace_id, webhook_id),
        event_id,
        event_type=event_type,
        payload=zlib.compress(body),
        status=store.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
        expires_at=timedelta(days=settings.webhook_delivery_retention_days),
    )


def queue_delivery(settings: Settings, delivery: WebhookDelivery) -> bool:
    """Store the delivery unless it exists, and queue its first attempt: a PutItem and a SendMessage.

    A delivery that exists (a replayed stream record) is queued again only while its first attempt
    has not been made: the record's first run may have stopped between the two calls. A second
    message for the same attempt sends nothing twice (chalicelib.webhooks.delivery claims each
    attempt). True when the delivery was new.
    """
    workspace_id, webhook_id = delivery.endpoint.split("#", 1)
    created = store.put_delivery(delivery)
    if not created:
        existing = store.get_delivery(workspace_id, webhook_id, delivery.event_id)
        if existing is None or existing.status != store.PENDING or int(existing.attempts or 0) > 0:
            return False
    job = queue.Job(workspace_id, webhook_id, delivery.event_id, attempt=1, due=time.time())
    queue.send(settings, job)
    return created


def payload(delivery: WebhookDelivery) -> bytes:
    return zlib.decompress(delivery.payload)


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=int(delivery.attempts or 0),
        last_status_code=int(delivery.last_status_code) if delivery.last_status_code is not None else None,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if delivery.status == store.PENDING else None,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )
