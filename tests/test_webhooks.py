"""Webhook endpoints through HTTP: every route, the roles, validation problems, the secret shown once,
workspace isolation."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from chalicelib.models import WebhookEndpoint
from tests.conftest import Api, problem
from tests.webhooks import drain, queue_ready, receiving, register
from tests.workspaces import acting_in, add, new_workspace

MISSING = "01M8FP1CYTGFW5FGC7TXSJ3ETH"
LOCAL_URL = "http://127.0.0.1:9/hooks"


@pytest.fixture
def hooks(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    return queue_ready(monkeypatch)


@pytest.fixture
def team(alice: Api, anon: Api, hooks: str) -> dict[str, Api]:
    """A shared workspace: alice owns it, and a member of each other role; each acting in it."""
    workspace_id = new_workspace(alice, "Team")
    members = {"owner": acting_in(alice, workspace_id)}
    for role in ("admin", "editor", "viewer"):
        user = anon.sign_up(f"{role}1")
        add(members["owner"], workspace_id, f"{role}1", role)
        members[role] = acting_in(user, workspace_id)
    return members


# ---- creating, reading, the secret ---------------------------------------------------------------


def test_the_secret_is_shown_once_in_standard_webhooks_form(alice: Api, hooks: str) -> None:
    created = alice.post("/webhooks", {"url": LOCAL_URL, "events": ["contact.created"], "description": "CRM"})
    assert created.status == 201
    body = created.json
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"), validate=True)) >= 24
    assert created.header("cache-control") == "no-store"
    assert {k: body[k] for k in ("url", "events", "description", "enabled", "failures_in_a_row")} == {
        "url": LOCAL_URL, "events": ["contact.created"], "description": "CRM", "enabled": True,
        "failures_in_a_row": 0,
    }  # fmt: skip
    webhook_id = body["id"]
    for reply in (
        alice.get(f"/webhooks/{webhook_id}"),
        alice.get("/webhooks"),
        alice.patch(f"/webhooks/{webhook_id}", {"description": "CRM sync"}),
    ):
        assert reply.status == 200
        assert "secret" not in reply.body.decode() and body["secret"] not in reply.body.decode()
    assert alice.get("/webhooks").json["items"][0]["id"] == webhook_id


def test_the_secret_is_never_logged(alice: Api, hooks: str, caplog: pytest.LogCaptureFixture) -> None:
    """Whatever our code logs, at any level (botocore's own DEBUG output of request bodies is
    off on every stage: LOG_LEVEL names our loggers' level, botocore's stays at WARNING)."""
    caplog.set_level(logging.DEBUG, logger="contact_notes")
    with receiving([500]) as receiver:
        created = register(alice, receiver.url)
        assert alice.post(f"/webhooks/{created['id']}/test").status == 202
        drain(alice.client)
    assert receiver.received
    secret = created["secret"]
    assert not [
        r for r in caplog.records if secret in r.getMessage() or secret.removeprefix("whsec_") in str(r.__dict__)
    ]


def test_events_are_checked_deduplicated_and_star_means_all(alice: Api, hooks: str) -> None:
    both = register(alice, LOCAL_URL, ["note.created", "contact.deleted", "note.created"])
    assert both["events"] == ["contact.deleted", "note.created"]
    assert register(alice, LOCAL_URL, ["contact.created", "*"])["events"] == ["*"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"url": "ftp://example.com/x", "events": ["*"]}, "#/url"),
        ({"url": "not a url", "events": ["*"]}, "#/url"),
        ({"url": "http://user:pw@127.0.0.1/", "events": ["*"]}, "#/url"),
        ({"url": "http://127.0.0.1/" + "a" * 2100, "events": ["*"]}, "#/url"),
        ({"url": "", "events": ["*"]}, "#/url"),
        ({"url": LOCAL_URL, "events": []}, "#/events"),
        ({"url": LOCAL_URL, "events": ["contact.exploded"]}, "#/events/0"),
        ({"url": LOCAL_URL, "events": "*"}, "#/events"),
        ({"url": LOCAL_URL}, "#/events"),
        ({"events": ["*"]}, "#/url"),
        ({"url": LOCAL_URL, "events": ["*"], "description": "x" * 201}, "#/description"),
        ({"url": LOCAL_URL, "events": ["*"], "secret": "whsec_mine"}, "#/secret"),
        ({"url": LOCAL_URL, "events": ["*"], "enabled": False}, "#/enabled"),
    ],
)
def test_invalid_registrations_are_problems(alice: Api, hooks: str, body: dict[str, Any], pointer: str) -> None:
    body_out = problem(alice.post("/webhooks", body), 422)
    assert pointer in [error["pointer"] for error in body_out["errors"]], body_out
    assert alice.get("/webhooks").json["items"] == []


def test_the_local_stage_takes_loopback_and_refuses_private_addresses(alice: Api, hooks: str) -> None:
    for url in ("http://127.0.0.1:8123/x?y=1", "http://localhost:1/", "https://localhost/hooks"):
        register(alice, url)
    for url in ("http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "https://10.0.0.1/"):
        problem(alice.post("/webhooks", {"url": url, "events": ["*"]}), 422)


# ---- roles and workspaces ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_viewers_and_editors_cannot_see_or_manage_webhooks(team: dict[str, Api], role: str) -> None:
    webhook_id = register(team["admin"], LOCAL_URL)["id"]
    caller = team[role]
    for reply in (
        caller.post("/webhooks", {"url": LOCAL_URL, "events": ["*"]}),
        caller.get("/webhooks"),
        caller.get(f"/webhooks/{webhook_id}"),
        caller.patch(f"/webhooks/{webhook_id}", {"description": "mine now"}),
        caller.delete(f"/webhooks/{webhook_id}"),
        caller.post(f"/webhooks/{webhook_id}/test"),
        caller.get(f"/webhooks/{webhook_id}/deliveries"),
    ):
        problem(reply, 403)
    assert team["owner"].get(f"/webhooks/{webhook_id}").json["description"] is None


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_admins_and_owners_manage_webhooks(team: dict[str, Api], role: str) -> None:
    caller = team[role]
    webhook_id = register(caller, LOCAL_URL, ["note.created"])["id"]
    assert caller.get(f"/webhooks/{webhook_id}").status == 200
    assert caller.patch(f"/webhooks/{webhook_id}", {"events": ["*"]}).json["events"] == ["*"]
    assert caller.post(f"/webhooks/{webhook_id}/test").status == 202
    assert caller.get(f"/webhooks/{webhook_id}/deliveries").json["items"][0]["event_type"] == "webhook.test"
    assert caller.delete(f"/webhooks/{webhook_id}").status == 204
    problem(caller.get(f"/webhooks/{webhook_id}"), 404)


def test_another_workspaces_webhook_is_not_found(alice: Api, bob: Api, hooks: str) -> None:
    webhook_id = register(alice, LOCAL_URL)["id"]
    assert bob.get("/webhooks").json["items"] == []
    for reply in (
        bob.get(f"/webhooks/{webhook_id}"),
        bob.patch(f"/webhooks/{webhook_id}", {"description": "mine"}),
        bob.delete(f"/webhooks/{webhook_id}"),
        bob.post(f"/webhooks/{webhook_id}/test"),
        bob.get(f"/webhooks/{webhook_id}/deliveries"),
        alice.get(f"/webhooks/{MISSING}"),
        alice.get("/webhooks/not-an-id"),
        alice.delete("/webhooks/%23count"),
    ):
        problem(reply, 404)
    assert alice.get(f"/webhooks/{webhook_id}").json["description"] is None


# ---- changing, listing, deleting ---------------------------------------------------------------


def test_patch_changes_only_what_is_sent(alice: Api, hooks: str) -> None:
    webhook_id = register(alice, LOCAL_URL, ["contact.created"], description="first")["id"]
    changed = alice.patch(f"/webhooks/{webhook_id}", {"url": "http://localhost:8080/new"})
    assert changed.status == 200
    assert (changed.json["url"], changed.json["events"], changed.json["description"]) == (
        "http://localhost:8080/new", ["contact.created"], "first")  # fmt: skip
    assert changed.json["version"] == 2 and changed.header("etag") == f'"{webhook_id}-2"'
    cleared = alice.patch(f"/webhooks/{webhook_id}", {"description": None, "events": ["note.deleted"]}).json
    assert (cleared["description"], cleared["events"]) == (None, ["note.deleted"])
    for body, pointer in (
        ({"url": None}, "#/url"),
        ({"events": None}, "#/events"),
        ({"url": "http://10.1.1.1/"}, "#/url"),
    ):
        assert pointer in [e["pointer"] for e in problem(alice.patch(f"/webhooks/{webhook_id}", body), 422)["errors"]]
    problem(alice.patch(f"/webhooks/{webhook_id}", {}), 422)
    problem(alice.patch(f"/webhooks/{MISSING}", {"description": "x"}), 404)


def test_pausing_and_enabling_again(alice: Api, hooks: str) -> None:
    webhook_id = register(alice, LOCAL_URL)["id"]
    paused = alice.patch(f"/webhooks/{webhook_id}", {"enabled": False}).json
    assert paused["enabled"] is False and "admin" in paused["disabled_reason"] and paused["disabled_at"]
    problem(alice.post(f"/webhooks/{webhook_id}/test"), 409)
    enabled = alice.patch(f"/webhooks/{webhook_id}", {"enabled": True}).json
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["disabled_at"]) == (True, None, None)


def test_lists_are_paged_newest_first(alice: Api, hooks: str) -> None:
    ids = [register(alice, LOCAL_URL)["id"] for _ in range(3)]
    first = alice.get("/webhooks?limit=2").json
    assert [w["id"] for w in first["items"]] == ids[::-1][:2] and first["next_cursor"]
    second = alice.get(f"/webhooks?limit=2&cursor={first['next_cursor']}").json
    assert [w["id"] for w in second["items"]] == [ids[0]] and second["next_cursor"] is None
    problem(alice.get("/webhooks?cursor=forged"), 400)
    tests = [alice.post(f"/webhooks/{ids[0]}/test").json["id"] for _ in range(3)]
    page = alice.get(f"/webhooks/{ids[0]}/deliveries?limit=2").json
    assert [d["id"] for d in page["items"]] == tests[::-1][:2]
    rest = alice.get(f"/webhooks/{ids[0]}/deliveries?limit=2&cursor={page['next_cursor']}").json
    assert [d["id"] for d in rest["items"]] == [tests[0]] and rest["next_cursor"] is None
    problem(alice.get(f"/webhooks/{ids[1]}/deliveries?cursor={page['next_cursor']}"), 400)  # another list's


def test_a_workspace_has_at_most_25_endpoints_and_deleting_frees_a_place(alice: Api, hooks: str) -> None:
    ids = [register(alice, LOCAL_URL)["id"] for _ in range(25)]
    problem(alice.post("/webhooks", {"url": LOCAL_URL, "events": ["*"]}), 409)
    assert alice.delete(f"/webhooks/{ids[0]}").status == 204
    problem(alice.delete(f"/webhooks/{ids[0]}"), 404)
    register(alice, LOCAL_URL)
    counter = WebhookEndpoint.get(alice.user["id"], "#count", consistent_read=True)
    assert counter.endpoints == 25
    assert len(alice.get("/webhooks?limit=100").json["items"]) == 25  # the counter is never listed


def test_the_test_route_queues_a_pending_delivery(alice: Api, hooks: str) -> None:
    webhook_id = register(alice, LOCAL_URL, ["note.deleted"])["id"]
    queued = alice.post(f"/webhooks/{webhook_id}/test")
    assert queued.status == 202
    delivery = queued.json
    assert delivery["id"].startswith("evt_") and delivery["event_type"] == "webhook.test"
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("pending", 0, None)
    assert alice.get(f"/webhooks/{webhook_id}/deliveries").json["items"] == [delivery]
    problem(alice.post(f"/webhooks/{MISSING}/test"), 404)
