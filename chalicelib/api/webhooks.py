"""Webhooks: register endpoints for the workspace's change events (admins and owners), test them,
and see their deliveries. Rules in chalicelib.webhooks.service."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.api.routing import ApiBlueprint, no_content, versioned
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.schemas import PageQuery
from chalicelib.web import json_response
from chalicelib.webhooks import service
from chalicelib.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
)

webhooks_api = ApiBlueprint(__name__)

WEBHOOK = "/webhooks/{webhook_id}"
TAG = "webhooks"
CREATE_RULES = (
    "Deliveries are signed as Standard Webhooks specifies (webhook-id, webhook-timestamp, webhook-signature) "
    "with the secret in this answer, shown only once. On deployed stages the URL must be https:// to a host "
    "name whose addresses are all public. Not idempotent by design: the secret is stored nowhere else."
)


@webhooks_api.operation(
    "/webhooks",
    ["POST"],
    Operation("Register a webhook endpoint (admins)", TAG, 201, WebhookCreated, WebhookIn, role="admin",
              problems=(409,), description=CREATE_RULES, operation_id="createWebhook"),
)  # fmt: skip
def create_webhook() -> Response:
    data = webhooks_api.body(WebhookIn)
    created = service.create(settings(), webhooks_api.owner(), webhooks_api.user(), data)
    return versioned(created, 201)


@webhooks_api.operation(
    "/webhooks",
    ["GET"],
    Operation("The workspace's webhook endpoints, newest first (admins)", TAG, response=WebhookPage,
              query=PageQuery, role="admin", operation_id="listWebhooks"),
)  # fmt: skip
def list_webhooks() -> Response:
    return json_response(service.list_webhooks(settings(), webhooks_api.owner(), webhooks_api.page_query()))


@webhooks_api.operation(
    WEBHOOK,
    ["GET"],
    Operation("Get a webhook endpoint, and why it is disabled if it is (admins)", TAG, response=WebhookOut,
              etag=True, role="admin", operation_id="getWebhook"),
)  # fmt: skip
def get_webhook(webhook_id: str) -> Response:
    return versioned(service.get(webhooks_api.owner(), webhook_id))


@webhooks_api.operation(
    WEBHOOK,
    ["PATCH"],
    Operation("Change a webhook endpoint, or enable it again (admins)", TAG, 200, WebhookOut, WebhookPatch,
              etag=True, role="admin", operation_id="updateWebhook"),
)  # fmt: skip
def update_webhook(webhook_id: str) -> Response:
    data = webhooks_api.body(WebhookPatch)
    return versioned(service.update(settings(), webhooks_api.owner(), webhook_id, data))


@webhooks_api.operation(
    WEBHOOK,
    ["DELETE"],
    Operation("Delete a webhook endpoint (admins)", TAG, 204, role="admin", operation_id="deleteWebhook"),
)
def delete_webhook(webhook_id: str) -> Response:
    service.delete(webhooks_api.owner(), webhook_id)
    return no_content()


@webhooks_api.operation(
    WEBHOOK + "/test",
    ["POST"],
    Operation("Queue a webhook.test delivery to the endpoint (admins)", TAG, 202, DeliveryOut, role="admin",
              problems=(409,), operation_id="testWebhook"),
)  # fmt: skip
def test_webhook(webhook_id: str) -> Response:
    delivery = service.send_test(settings(), webhooks_api.owner(), webhook_id, webhooks_api.user())
    return json_response(delivery, 202)


@webhooks_api.operation(
    WEBHOOK + "/deliveries",
    ["GET"],
    Operation("The endpoint's deliveries, newest first: status, attempts, last answer, next attempt (admins)",
              TAG, response=DeliveryPage, query=PageQuery, role="admin", operation_id="listWebhookDeliveries"),
)  # fmt: skip
def list_deliveries(webhook_id: str) -> Response:
    query = webhooks_api.page_query()
    return json_response(service.list_deliveries(settings(), webhooks_api.owner(), webhook_id, query))
