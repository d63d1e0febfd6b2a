"""Webhook deliveries against a real HTTP receiver on loopback, through the Lambda interface: the
audit stream's fan-out (hand-built stream records) and the delivery queue's consumer (messages
from moto's SQS, as the event source mapping hands them over)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from standardwebhooks import Webhook

from chalicelib.models import WebhookDelivery
from tests.conftest import Api, SocketGuard, problem
from tests.streams import audit_record
from tests.webhooks import (
    drain,
    fan_out,
    make_event,
    queue_ready,
    receiving,
    register,
    sqs_record,
    waiting,
)


@pytest.fixture
def hooks(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    return queue_ready(monkeypatch)


def _deliveries(api: Api, webhook_id: str) -> list[dict[str, Any]]:
    reply = api.get(f"/webhooks/{webhook_id}/deliveries")
    assert reply.status == 200
    items: list[dict[str, Any]] = reply.json["items"]
    return items


def _event(api: Api, event_type: str = "contact.created", **extra: Any) -> dict[str, Any]:
    return make_event(api.user["id"], api.user["id"], event_type, **extra)


# ---- signed deliveries ------------------------------------------------------------------------


def test_a_delivery_is_signed_as_standard_webhooks_specifies(alice: Api, hooks: str) -> None:
    with receiving() as receiver:
        created = register(alice, receiver.url, ["contact.created"])
        event = _event(alice)
        assert fan_out(alice.client, audit_record(event)) == {"batchItemFailures": []}
        drain(alice.client)
    (request,) = receiver.received
    assert request.path == "/hooks"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == event["id"]
    assert Webhook(created["secret"]).verify(request.body, request.headers) == event
    assert request.body == json.dumps(event, separators=(",", ":")).encode()  # the audit entry's text, as is
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 32).verify(request.body, request.headers)
    (delivery,) = _deliveries(alice, created["id"])
    shown = ("id", "event_type", "status", "attempts", "last_status_code", "next_attempt_at")
    assert {k: delivery[k] for k in shown} == {
        "id": event["id"], "event_type": "contact.created", "status": "succeeded", "attempts": 1,
        "last_status_code": 204, "next_attempt_at": None,
    }  # fmt: skip
    assert delivery["delivered_at"]


def test_the_test_route_delivers_a_verifiable_webhook_test_event(alice: Api, hooks: str) -> None:
    with receiving() as receiver:
        created = register(alice, receiver.url, ["note.deleted"])
        queued = alice.post(f"/webhooks/{created['id']}/test").json
        drain(alice.client)
    (request,) = receiver.received
    event = Webhook(created["secret"]).verify(request.body, request.headers)
    assert (event["id"], event["type"], event["workspace_id"]) == (queued["id"], "webhook.test", alice.user["id"])
    assert _deliveries(alice, created["id"])[0]["status"] == "succeeded"


def test_only_subscribed_enabled_endpoints_of_the_events_workspace_get_it(alice: Api, bob: Api, hooks: str) -> None:
    with receiving() as receiver:
        notes = register(alice, receiver.url + "/notes", ["note.created"])
        everything = register(alice, receiver.url + "/all", ["*"])["id"]
        paused = register(alice, receiver.url + "/paused", ["*"])
        alice.patch(f"/webhooks/{paused['id']}", {"enabled": False})
        bobs = register(bob, receiver.url + "/bob", ["*"])
        fan_out(alice.client, audit_record(_event(alice, "contact.updated", changes={"first_name": ["A", "B"]})))
        drain(alice.client)
    assert [r.path for r in receiver.received] == ["/hooks/all"]
    assert _deliveries(alice, everything)[0]["status"] == "succeeded"
    assert _deliveries(alice, notes["id"]) == _deliveries(alice, paused["id"]) == _deliveries(bob, bobs["id"]) == []


def test_system_events_and_records_that_are_not_inserts_are_not_delivered(alice: Api, hooks: str) -> None:
    with receiving() as receiver:
        created = register(alice, receiver.url)
        system = make_event(alice.user["id"], "system", "note.updated")
        mine = _event(alice, "note.updated")
        fan_out(alice.client, audit_record(system), audit_record(mine, "MODIFY"), audit_record(mine, "REMOVE"))
        assert waiting() == 0
    assert receiver.received == [] and _deliveries(alice, created["id"]) == []


# ---- exactly once in effect --------------------------------------------------------------------


def test_a_replayed_stream_record_delivers_once(alice: Api, hooks: str) -> None:
    with receiving() as receiver:
        created = register(alice, receiver.url)
        record = audit_record(_event(alice))
        fan_out(alice.client, record)
        fan_out(alice.client, record)  # replayed before its delivery was made: at most a second message
        drain(alice.client)
        fan_out(alice.client, record)  # replayed after: nothing queued at all
        assert waiting() == 0
    assert len(receiver.received) == 1
    assert len(_deliveries(alice, created["id"])) == 1


def test_a_redelivered_message_does_not_send_again(alice: Api, hooks: str) -> None:
    """SQS delivers at least once: a copy of a message, in the same batch or after the delivery
    succeeded, sends nothing."""
    from chalicelib import runtime
    from chalicelib.webhooks import queue

    with receiving() as receiver:
        register(alice, receiver.url)
        fan_out(alice.client, audit_record(_event(alice)))
        settings = runtime.settings()
        (message,) = queue.client(settings).receive_message(QueueUrl=queue.queue_url(settings))["Messages"]
        copy = {**message, "MessageId": message["MessageId"] + "-copy"}
        batch = {"Records": [sqs_record(message), sqs_record(copy)]}
        assert alice.client.lambda_.invoke("deliver_webhooks", batch).payload == {"batchItemFailures": []}
        again = alice.client.lambda_.invoke("deliver_webhooks", {"Records": [sqs_record(message)]}).payload
        assert again == {"batchItemFailures": []}
    assert len(receiver.received) == 1


# ---- retries, final failures, disabling ---------------------------------------------------------


def test_500s_are_retried_with_the_same_id_until_success(alice: Api, hooks: str) -> None:
    with receiving([500, 503, 200]) as receiver:
        created = register(alice, receiver.url)
        event = _event(alice)
        fan_out(alice.client, audit_record(event))
        drain(alice.client)
    assert [r.headers["webhook-id"] for r in receiver.received] == [event["id"]] * 3
    for request in receiver.received:
        assert Webhook(created["secret"]).verify(request.body, request.headers) == event
    (delivery,) = _deliveries(alice, created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("succeeded", 3, 200)
    assert alice.get(f"/webhooks/{created['id']}").json["failures_in_a_row"] == 0


def test_retries_end_once_the_schedule_is_spent(alice: Api, hooks: str) -> None:
    with receiving([429, 408, 502, 500]) as receiver:  # three pauses: four attempts
        created = register(alice, receiver.url)
        fan_out(alice.client, audit_record(_event(alice)))
        drain(alice.client)
    assert len(receiver.received) == 4
    (delivery,) = _deliveries(alice, created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 4, 500)
    assert alice.get(f"/webhooks/{created['id']}").json["failures_in_a_row"] == 1


@pytest.mark.parametrize("status", [400, 401, 404, 422, 301])
def test_other_4xx_and_redirects_are_final(alice: Api, hooks: str, status: int) -> None:
    with receiving([status]) as receiver:
        created = register(alice, receiver.url)
        fan_out(alice.client, audit_record(_event(alice)))
        drain(alice.client)
    assert len(receiver.received) == 1
    (delivery,) = _deliveries(alice, created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 1, status)
    assert alice.get(f"/webhooks/{created['id']}").json["enabled"] is True


def test_a_410_ends_it_and_disables_the_endpoint(alice: Api, hooks: str) -> None:
    with receiving([410]) as receiver:
        created = register(alice, receiver.url)
        fan_out(alice.client, audit_record(_event(alice)))
        drain(alice.client)
        endpoint = alice.get(f"/webhooks/{created['id']}").json
        assert endpoint["enabled"] is False and "410" in endpoint["disabled_reason"] and endpoint["disabled_at"]
        fan_out(alice.client, audit_record(_event(alice)))  # a disabled endpoint gets nothing more
        assert waiting() == 0
    assert len(receiver.received) == 1
    (delivery,) = _deliveries(alice, created["id"])
    assert (delivery["status"], delivery["last_status_code"]) == ("failed", 410)


def test_a_slow_receiver_times_out(alice: Api, hooks: str, limits: Any) -> None:
    limits(webhook_timeout_seconds=0.5, webhook_retry_seconds="0")
    with receiving([200], delay=2.0) as receiver:
        created = register(alice, receiver.url)
        fan_out(alice.client, audit_record(_event(alice)))
        drain(alice.client)
    assert len(receiver.received) == 2  # the first attempt and its one retry
    (delivery,) = _deliveries(alice, created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 2, None)
    assert "0.5 s" in delivery["last_error"]


def test_a_receiver_dripping_its_answer_still_times_out(alice: Api, hooks: str, limits: Any) -> None:
    """Each header line comes within the per-read timeout; the whole answer does not come within
    the attempt's: the attempt is given up by the wall clock, not held for as long as it drips."""
    limits(webhook_timeout_seconds=0.5, webhook_retry_seconds="0")
    with receiving([200], drip=0.3) as receiver:
        created = register(alice, receiver.url)
        fan_out(alice.client, audit_record(_event(alice)))
        drain(alice.client)
    assert len(receiver.received) == 2  # the first attempt and its one retry, each given up
    (delivery,) = _deliveries(alice, created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 2, None)
    assert "0.5 s" in delivery["last_error"]


def test_an_unreachable_endpoint_is_retried(alice: Api, hooks: str, limits: Any) -> None:
    limits(webhook_retry_seconds="0")
    with receiving() as receiver:
        closed = receiver.url  # nothing listens there once the receiver stops
    created = register(alice, closed)
    fan_out(alice.client, audit_record(_event(alice)))
    drain(alice.client)
    (delivery,) = _deliveries(alice, created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 2, None)
    assert "connect" in delivery["last_error"]


def test_repeated_failures_disable_the_endpoint_until_an_admin_enables_it(alice: Api, hooks: str, limits: Any) -> None:
    limits(webhook_retry_seconds="0", webhook_disable_after=2)
    with receiving([500]) as receiver:
        created = register(alice, receiver.url)
        webhook_id = created["id"]
        fan_out(alice.client, audit_record(_event(alice)))
        drain(alice.client)
        assert alice.get(f"/webhooks/{webhook_id}").json["failures_in_a_row"] == 1
        fan_out(alice.client, audit_record(_event(alice)))
        drain(alice.client)
        endpoint = alice.get(f"/webhooks/{webhook_id}").json
        assert endpoint["enabled"] is False and endpoint["failures_in_a_row"] == 2
        assert "2 deliveries in a row failed" in endpoint["disabled_reason"]
        assert "500" in endpoint["disabled_reason"]
        enabled = alice.patch(f"/webhooks/{webhook_id}", {"enabled": True}).json
        assert (enabled["enabled"], enabled["failures_in_a_row"], enabled["disabled_reason"]) == (True, 0, None)
        receiver.statuses[:] = [200]
        fan_out(alice.client, audit_record(_event(alice)))
        drain(alice.client)
    assert len(receiver.received) == 5
    assert [d["status"] for d in _deliveries(alice, webhook_id)] == ["succeeded", "failed", "failed"]


def test_a_deleted_endpoints_pending_delivery_fails_without_sending(alice: Api, hooks: str) -> None:
    with receiving() as receiver:
        created = register(alice, receiver.url)
        event = _event(alice)
        fan_out(alice.client, audit_record(event))
        assert alice.delete(f"/webhooks/{created['id']}").status == 204
        drain(alice.client)
    assert receiver.received == []
    delivery = WebhookDelivery.get(f"{alice.user['id']}#{created['id']}", event["id"], consistent_read=True)
    assert (delivery.status, delivery.last_error) == ("failed", "The endpoint was deleted.")


# ---- SSRF: the prod stage ------------------------------------------------------------------------

PUBLIC = "93.184.215.14"


@pytest.fixture
def prod(limits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prod stage's settings (argon2id at OWASP's cost, as prod refuses less)."""
    from chalicelib import runtime

    for name in ("PASSWORD_HASH_MEMORY_KIB", "PASSWORD_HASH_ROUNDS"):
        monkeypatch.delenv(name)
    limits(stage="prod")
    # Read now and kept (runtime.settings is cached): the test client sets the local stage's
    # variables (STAGE=local, from .chalice/config.json) around each request it makes.
    assert runtime.settings().stage == "prod"


class Resolver:
    """socket.getaddrinfo stubbed: `names` resolve to the addresses given (none: no such name),
    numeric hosts as ever; any other name is the socket guard's to refuse."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: dict[str, list[str]] = {}
        self.asked: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host in self.names:
                self.asked.append(host)
                if not self.names[host]:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
                return [_info(address, int(port or 0)) for address in self.names[host]]
            return real(host, port, *args, **kwargs)  # numeric hosts; the guard refuses names

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _info(address: str, port: int) -> tuple[Any, ...]:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    return Resolver(monkeypatch)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "https://10.0.0.1/",
        "https://169.254.169.254/",
        "https://[::1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://0x7f000001/",
        "https://2130706433/",
        "http://127.0.0.1:8000/hooks",
        "http://localhost/hooks",
        "https://localhost/hooks",
        "http://hooks.example.com/",  # a public name, but not https
    ],
)
def test_prod_refuses_private_and_literal_targets(
    alice: Api, hooks: str, prod: None, resolver: Resolver, socket_guard: SocketGuard, url: str
) -> None:
    resolver.names["hooks.example.com"] = [PUBLIC]
    resolver.names["0x7f000001"] = resolver.names["2130706433"] = ["127.0.0.1"]  # as inet_aton reads them
    refused = problem(alice.post("/webhooks", {"url": url, "events": ["*"]}), 422)
    assert refused["errors"][0]["pointer"] == "#/url"
    assert socket_guard.connects == []


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["172.16.0.9"],
        ["192.168.1.1"],
        ["169.254.169.254"],
        ["100.64.0.1"],
        ["0.0.0.0"],  # noqa: S104 (an address under test, nothing binds it)
        ["224.0.0.1"],
        ["240.0.0.1"],
        ["::1"],
        ["fd00:ec2::254"],
        ["fe80::1"],
        ["ff02::1"],
        ["::ffff:10.0.0.1"],
        ["64:ff9b::a00:1"],
        ["2002:a00:1::1"],
        [PUBLIC, "10.0.0.1"],  # one private address among public ones is enough
    ],
)
def test_prod_refuses_names_resolving_to_non_public_addresses(
    alice: Api, hooks: str, prod: None, resolver: Resolver, socket_guard: SocketGuard, addresses: list[str]
) -> None:
    resolver.names["hooks.example.com"] = addresses
    refused = problem(alice.post("/webhooks", {"url": "https://hooks.example.com/in", "events": ["*"]}), 422)
    assert "public" in refused["errors"][0]["detail"]
    assert resolver.asked == ["hooks.example.com"] and socket_guard.connects == []


def test_prod_takes_a_name_resolving_to_public_addresses_only(
    alice: Api, hooks: str, prod: None, resolver: Resolver
) -> None:
    resolver.names["hooks.example.com"] = [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    resolver.names["nowhere.example.com"] = []
    assert alice.post("/webhooks", {"url": "https://hooks.example.com/in", "events": ["*"]}).status == 201
    problem(alice.post("/webhooks", {"url": "https://nowhere.example.com/", "events": ["*"]}), 422)  # no answer


def test_prod_refuses_at_delivery_a_name_that_now_resolves_privately(
    alice: Api, hooks: str, prod: None, resolver: Resolver, socket_guard: SocketGuard
) -> None:
    """DNS rebinding: the name was public at registration; at delivery it resolves to a private
    address, and nothing is sent: no connection is even tried."""
    resolver.names["hooks.example.com"] = [PUBLIC]
    created = register(alice, "https://hooks.example.com/in")
    resolver.names["hooks.example.com"] = ["10.0.0.7"]
    fan_out(alice.client, audit_record(_event(alice)))
    drain(alice.client)
    assert socket_guard.connects == []
    (delivery,) = _deliveries(alice, created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 1, None)
    assert "private" in delivery["last_error"] and "nothing sent" in delivery["last_error"]
    resolver.names["hooks.example.com"] = ["169.254.169.254"]
    alice.post(f"/webhooks/{created['id']}/test")
    drain(alice.client)
    assert socket_guard.connects == []
    assert "link-local" in _deliveries(alice, created["id"])[0]["last_error"]
