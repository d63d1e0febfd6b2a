"""The live-updates fan-out: a consumer of the audit table's stream (NEW_IMAGE).

Each INSERT record is one change event (the lead's outbox: chalicelib.models.AuditEntry,
its `event` attribute the event's JSON). Per record: one Query of the workspace's connections
(chalicelib.live.connections), then one post_to_connection per connection through API
Gateway's Management API, with the event's JSON as the message, sent concurrently. MODIFY and
REMOVE records (TTL expiry) are not events, and an event whose actor is "system" (the
normalizer's write-back) is not pushed.

- A connection API Gateway answers 410 (GoneException) is gone: both its items are deleted.
- A connection whose token has expired is closed (DELETE @connections) and deleted: the client
  reconnects with a fresh token, so a live feed lasts no longer than the token that opened it.
- Any other failure to post to one connection (a throttle or an error after the client's own
  retries) is logged and counted (LiveDeliveriesFailed), not retried through the stream: a
  retry would post the event again to every other connection of the workspace.
- A record fails (reported in batchItemFailures, retried by the event source mapping, then
  sent to its dead-letter queue) only when the connections cannot be read: nothing was posted
  yet. A gone or expired connection that cannot be deleted now is logged and left to its TTL
  (and the next event's 410).

Delivery is at least once: a record retried after a partial batch failure may post an event
again. Clients deduplicate by the event's id, which is stable across redeliveries. An event
over API Gateway's 128 KB message limit (a long note's data) is sent without `data` and
`changes`, marked `"truncated": true`: the client reads the resource instead.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import observability
from chalicelib.errors import ServiceUnavailable
from chalicelib.live import connections
from chalicelib.live.connections import Connection
from chalicelib.runtime import settings
from chalicelib.stream_batches import process_records

logger = logging.getLogger("contact_notes.live")

SYSTEM_ACTOR = "system"
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message limit
POSTERS = 16  # posts in flight at once for one event


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point's work: each record on its own; the failed ones reported."""
    return process_records(event, context, push_record)


def push_record(record: DynamoDBRecord) -> None:
    """Push one audit record's event to its workspace's connections (nothing for non-events)."""
    if record.event_name != DynamoDBRecordEventName.INSERT:
        return
    if record.dynamodb is None or not record.dynamodb.new_image:
        raise ValueError("an INSERT record without its new image")
    image = record.dynamodb.new_image
    event = json.loads(str(image["event"]))
    if event.get("actor_id") == SYSTEM_ACTOR:
        observability.count("LiveEventsSkipped")
        return
    push(str(image["workspace_id"]), message_of(event))


def message_of(event: dict[str, Any]) -> str:
    """The event's JSON as the message; without data and changes when over API Gateway's limit."""
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) <= MAX_MESSAGE_BYTES:
        return text
    slim = {key: value for key, value in event.items() if key not in ("data", "changes")}
    return json.dumps({**slim, "truncated": True}, ensure_ascii=False, separators=(",", ":"))


def push(workspace_id: str, message: str) -> dict[str, int]:
    """Post a message to every open connection of a workspace; counts by outcome."""
    found = connections.of_workspace(workspace_id)
    now = time.time()
    outcomes = {"sent": 0, "gone": 0, "expired": 0, "failed": 0}
    live = [c for c in found if not c.expired(now)]
    for connection in found:
        if connection.expired(now):
            _close(connection.connection_id)
            _forget(workspace_id, connection.connection_id)
            outcomes["expired"] += 1
    if live:
        with ThreadPoolExecutor(max_workers=min(POSTERS, len(live))) as pool:
            results = list(pool.map(lambda c: (c, _post(c, message)), live))
        for connection, outcome in results:
            if outcome == "gone":
                _forget(workspace_id, connection.connection_id)
            outcomes[outcome] += 1
    for outcome, number in outcomes.items():
        if number:
            observability.count(f"LiveDeliveries{outcome.capitalize()}", number)
    return outcomes


def _forget(workspace_id: str, connection_id: str) -> None:
    """Delete a connection that is gone; if the store cannot answer now, its TTL will."""
    try:
        connections.drop(workspace_id, connection_id)
    except ServiceUnavailable:
        logger.warning("a gone connection is left to its TTL: the store cannot answer now")


def _post(connection: Connection, message: str) -> str:
    client = management_client()
    if client is None:
        return "failed"
    try:
        client.post_to_connection(ConnectionId=connection.connection_id, Data=message.encode())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "GoneException":
            return "gone"
        logger.warning("live update not delivered to a connection: %s", exc.response.get("Error", {}).get("Code"))
        return "failed"
    except BotoCoreError as exc:
        logger.warning("live update not delivered to a connection: %s", type(exc).__name__)
        return "failed"
    return "sent"


def _close(connection_id: str) -> None:
    """Close a connection whose token has expired (it may be gone already)."""
    client = management_client()
    if client is None:
        return
    try:
        client.delete_connection(ConnectionId=connection_id)
    except (ClientError, BotoCoreError) as exc:
        logger.info("closing an expired connection: %s", type(exc).__name__)


def management_client() -> Any:
    """The Management API client for the configured endpoint; None (and a warning) without one."""
    current = settings()
    if not current.websocket_management_endpoint:
        logger.warning("WEBSOCKET_MANAGEMENT_ENDPOINT is not set: live updates are not sent")
        return None
    return _client(current.websocket_management_endpoint, current.aws_region)


@lru_cache(maxsize=2)
def _client(endpoint: str, region: str) -> Any:
    from botocore.config import Config

    from chalicelib.models import aws_session  # the session the DynamoDB client shares

    # Bounded: a slow Management API must not hold the stream. Standard retries cover its
    # throttling (LimitExceededException) and a lost connection.
    bounds = Config(
        connect_timeout=1,
        read_timeout=3,
        retries={"mode": "standard", "total_max_attempts": 3},
        max_pool_connections=POSTERS,
    )
    return aws_session().create_client("apigatewaymanagementapi", region_name=region, endpoint_url=endpoint,
                                       config=bounds)  # fmt: skip
