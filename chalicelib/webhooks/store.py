"""Persistence of webhook endpoints and deliveries: each function is one DynamoDB call unless it says
otherwise. Condition failures become domain errors (or False); outages become 503s."""

from __future__ import annotations

import time
from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.errors import Conflict, NotFound
from chalicelib.ids import new_id
from chalicelib.models import WebhookDelivery, WebhookEndpoint
from chalicelib.store import condition_failed, dynamodb_errors, get_or_none, transact

# The item holding a workspace's count of endpoints: sorts before every ULID, which begins with 0-7.
COUNTER_ID = "#count"
FIRST_ID = "0"  # the key condition that leaves the counter out of every Query
MAX_ENDPOINTS = 25  # per workspace: each event costs a Query over them and a delivery per match
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


def delivery_key(workspace_id: str, webhook_id: str) -> str:
    return f"{workspace_id}#{webhook_id}"


# ---- endpoints ---------------------------------------------------------------------------


def create_endpoint(endpoint: WebhookEndpoint) -> None:
    """One transaction: the endpoint, and the workspace's count of them, kept under MAX_ENDPOINTS."""
    counter = WebhookEndpoint(endpoint.workspace_id, COUNTER_ID)
    below_limit = WebhookEndpoint.endpoints.does_not_exist() | (WebhookEndpoint.endpoints < MAX_ENDPOINTS)

    def write(txn: TransactWrite) -> None:
        txn.update(counter, actions=[WebhookEndpoint.endpoints.add(1)], condition=below_limit)
        txn.save(endpoint, condition=WebhookEndpoint.webhook_id.does_not_exist())

    if transact(WebhookEndpoint, endpoint.webhook_id, write):
        raise Conflict(f"A workspace has at most {MAX_ENDPOINTS} webhook endpoints; delete one first.")


def get_endpoint(workspace_id: str, webhook_id: str) -> WebhookEndpoint | None:
    return get_or_none(WebhookEndpoint, workspace_id, webhook_id)


def list_endpoints(workspace_id: str, limit: int, after_id: str | None) -> list[WebhookEndpoint]:
    """One Query: up to `limit` endpoints, newest first, after the given id."""
    start = {"workspace_id": {"S": workspace_id}, "webhook_id": {"S": after_id}} if after_id else None
    with dynamodb_errors():
        return list(
            WebhookEndpoint.query(
                workspace_id,
                WebhookEndpoint.webhook_id >= FIRST_ID,
                consistent_read=True,
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            )
        )


def endpoints_of(workspace_id: str) -> list[WebhookEndpoint]:
    """Every endpoint of a workspace: one Query (MAX_ENDPOINTS fit in one page)."""
    with dynamodb_errors():
        return list(WebhookEndpoint.query(workspace_id, WebhookEndpoint.webhook_id >= FIRST_ID, consistent_read=True))


def update_endpoint(workspace_id: str, webhook_id: str, actions: list[Action]) -> WebhookEndpoint:
    """One conditional UpdateItem (version + 1); NotFound when there is no such endpoint."""
    endpoint = WebhookEndpoint(workspace_id, webhook_id)
    try:
        with dynamodb_errors():
            endpoint.update(actions=[*actions, WebhookEndpoint.version.add(1)], condition=WebhookEndpoint.url.exists())
    except PynamoDBException as exc:
        if condition_failed(exc):
            raise NotFound("Webhook not found.") from None
        raise
    return endpoint


def delete_endpoint(workspace_id: str, webhook_id: str) -> None:
    """One transaction: the endpoint goes, and the workspace's count with it. Its deliveries expire."""
    counter = WebhookEndpoint(workspace_id, COUNTER_ID)

    def write(txn: TransactWrite) -> None:
        txn.delete(WebhookEndpoint(workspace_id, webhook_id), condition=WebhookEndpoint.url.exists())
        txn.update(counter, actions=[WebhookEndpoint.endpoints.add(-1)])

    if transact(WebhookEndpoint, new_id(), write):
        raise NotFound("Webhook not found.")


def count_failure(workspace_id: str, webhook_id: str) -> int:
    """One UpdateItem: one more delivery failed for good; the count in a row now (0: endpoint gone)."""
    endpoint = WebhookEndpoint(workspace_id, webhook_id)
    try:
        with dynamodb_errors():
            endpoint.update(actions=[WebhookEndpoint.failures.add(1)], condition=WebhookEndpoint.url.exists())
    except PynamoDBException as exc:
        if condition_failed(exc):
            return 0
        raise
    return int(endpoint.failures or 0)


def reset_failures(workspace_id: str, webhook_id: str) -> None:
    """One UpdateItem, only while the count is above zero (a success after failures)."""
    try:
        with dynamodb_errors():
            WebhookEndpoint(workspace_id, webhook_id).update(
                actions=[WebhookEndpoint.failures.set(0)], condition=WebhookEndpoint.failures > 0
            )
    except PynamoDBException as exc:
        if not condition_failed(exc):
            raise


def disable(workspace_id: str, webhook_id: str, reason: str, now: str) -> bool:
    """One UpdateItem: stop delivering to an enabled endpoint, saying why; False if it was not enabled."""
    actions: list[Action] = [
        WebhookEndpoint.enabled.set(False),
        WebhookEndpoint.disabled_reason.set(reason),
        WebhookEndpoint.disabled_at.set(now),
        WebhookEndpoint.updated_at.set(now),
        WebhookEndpoint.version.add(1),
    ]
    try:
        with dynamodb_errors():
            WebhookEndpoint(workspace_id, webhook_id).update(actions=actions, condition=WebhookEndpoint.enabled == True)  # noqa: E712
    except PynamoDBException as exc:
        if condition_failed(exc):
            return False
        raise
    return True


# ---- deliveries --------------------------------------------------------------------------


def put_delivery(delivery: WebhookDelivery) -> bool:
    """One conditional PutItem: False when this event's delivery to this endpoint already exists."""
    try:
        with dynamodb_errors():
            delivery.save(condition=WebhookDelivery.event_id.does_not_exist())
    except PynamoDBException as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def get_delivery(workspace_id: str, webhook_id: str, event_id: str) -> WebhookDelivery | None:
    return get_or_none(WebhookDelivery, delivery_key(workspace_id, webhook_id), event_id)


def list_deliveries(workspace_id: str, webhook_id: str, limit: int, after_id: str | None) -> list[WebhookDelivery]:
    """One Query: up to `limit` deliveries, newest first, after the given event id (the payload left out)."""
    key = delivery_key(workspace_id, webhook_id)
    start = {"endpoint": {"S": key}, "event_id": {"S": after_id}} if after_id else None
    shown = [name for name in WebhookDelivery.get_attributes() if name not in ("payload", "lease_until", "expires_at")]
    with dynamodb_errors():
        return list(
            WebhookDelivery.query(
                key,
                consistent_read=True,
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
                attributes_to_get=shown,
            )
        )


def claim(delivery: WebhookDelivery, attempt: int, lease_seconds: float) -> bool:
    """One conditional UpdateItem: this worker makes attempt `attempt` (the one after those done),
    unless another holds it (a message SQS delivered twice) or it is done; False then."""
    now = time.time()
    condition = (
        (WebhookDelivery.status == PENDING)
        & (WebhookDelivery.attempts == attempt - 1)
        & (WebhookDelivery.lease_until.does_not_exist() | (WebhookDelivery.lease_until < now))
    )
    try:
        with dynamodb_errors():
            delivery.update(actions=[WebhookDelivery.lease_until.set(now + lease_seconds)], condition=condition)
    except PynamoDBException as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def record_attempt(delivery: WebhookDelivery, attempt: int, changes: dict[str, Any]) -> None:
    """One UpdateItem: the attempt's outcome (attributes set, or removed when None), the lease released.

    Conditional on the attempt still being this worker's to record (attempts unchanged since the claim).
    """
    actions: list[Action] = [WebhookDelivery.attempts.set(attempt), WebhookDelivery.lease_until.remove()]
    for name, value in changes.items():
        attribute = getattr(WebhookDelivery, name)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    with dynamodb_errors():
        delivery.update(actions=actions, condition=WebhookDelivery.attempts == attempt - 1)
