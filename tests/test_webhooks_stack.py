"""Webhooks under `make run`'s stack: a change's event goes from the contacts stream's pump to the
audit log, the audit stream's pump feeds the fan-out, the local queue worker feeds the delivery
Lambda's handler, and a receiver on loopback gets signed deliveries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from standardwebhooks import Webhook

from tests.stack import Stack, poll, running_stack, signed_in
from tests.webhooks import receiving


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(WEBHOOK_RETRY_SECONDS="0,0") as running:
        yield running


def test_the_stack_prints_its_webhook_stand_ins(stack: Stack) -> None:
    output = stack.output()
    assert "fan_out_webhooks" in output
    assert "deliver_webhooks fed from the queue" in output


def test_a_test_delivery_and_an_audit_event_reach_a_loopback_receiver(stack: Stack) -> None:
    auth = signed_in(stack.base, "hooked")
    me = requests.get(stack.base + "/api/v1/auth/me", headers=auth, timeout=10).json()
    with receiving([503, 200]) as receiver:
        created = requests.post(
            stack.base + "/api/v1/webhooks", json={"url": receiver.url, "events": ["contact.created"]},
            headers=auth, timeout=10,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        secret, webhook_id = created.json()["secret"], created.json()["id"]
        queued = requests.post(stack.base + f"/api/v1/webhooks/{webhook_id}/test", headers=auth, timeout=10)
        assert queued.status_code == 202
        poll(lambda: len(receiver.received) >= 2, 30)  # a 503, then the retry
        # A real change: the contacts stream's pump records its event, the audit stream's feeds the fan-out.
        contact = requests.post(stack.base + "/api/v1/contacts", json={"first_name": "Ada"}, headers=auth, timeout=10)
        assert contact.status_code == 201, contact.text
        poll(lambda: len(receiver.received) >= 3, 30)
    test, retried, audited = receiver.received
    assert test.headers["webhook-id"] == retried.headers["webhook-id"] == queued.json()["id"]
    assert Webhook(secret).verify(retried.body, retried.headers)["type"] == "webhook.test"
    event = Webhook(secret).verify(audited.body, audited.headers)
    assert (event["type"], event["actor_id"], event["resource_id"]) == (
        "contact.created",
        me["id"],
        contact.json()["id"],
    )
    assert event["data"] == contact.json() and audited.headers["webhook-id"] == event["id"]
    deliveries = requests.get(stack.base + f"/api/v1/webhooks/{webhook_id}/deliveries", headers=auth, timeout=10)
    assert [(d["event_type"], d["status"], d["attempts"]) for d in deliveries.json()["items"]] == [
        ("contact.created", "succeeded", 1), ("webhook.test", "succeeded", 2)]  # fmt: skip
