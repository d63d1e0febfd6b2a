"""Live updates (#17) through the Lambda interface: the WebSocket handlers (ws_connect,
ws_message, ws_disconnect) with API Gateway's events, and the fan-out (push_live_updates) with
hand-built audit-stream records, over moto.

The Management API is answered at the SDK boundary (a botocore before-call hook on the
fan-out's client: nothing of ours patched, nothing sent); every post it receives is recorded.
What is asserted is what was posted to which connection, and what the connections table holds.

Replay policy, shown by test_a_replayed_record_posts_the_same_event_again: delivery is at least
once. A record the event source mapping delivers again (after a partial batch failure) posts its
event again, with the same id; clients deduplicate by the event's id.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import jwt
import pytest
from chalice.test import Client

from chalicelib.live import connections
from chalicelib.live.fanout import MAX_MESSAGE_BYTES, management_client
from chalicelib.models import LiveConnection
from devtools.live_gateway import new_connection_id, websocket_event
from tests.conftest import TEST_SECRET, CallCounter, answering, dynamodb_error
from tests.streams import audit_record
from tests.workspaces import acting_in, add, new_workspace

MANAGEMENT = "https://abc123.execute-api.us-east-1.amazonaws.com/api"
_sequence = itertools.count(1)


# ---- helpers -----------------------------------------------------------------------------


def connect(client: Client, token: str | None, connection_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """$connect as API Gateway sends it; the connection id and the handler's answer."""
    connection_id = connection_id or new_connection_id()
    query = {"token": token} if token is not None else None
    answer = client.lambda_.invoke("ws_connect", websocket_event("$connect", connection_id, query=query)).payload
    return connection_id, answer


def connected(client: Client, token: str) -> str:
    connection_id, answer = connect(client, token)
    assert answer["statusCode"] == 200, answer
    return connection_id


def stored(connection_id: str) -> tuple[LiveConnection, LiveConnection] | None:
    """A connection's two items (its workspace's entry, its pointer), or None when neither exists."""
    try:
        pointer = LiveConnection.get(connections.CONNECTION_PREFIX + connection_id, connections.POINTER_SORT_KEY)
    except LiveConnection.DoesNotExist:
        pointer = None
    workspace = pointer.workspace_id if pointer is not None else None
    entries = [c for c in LiveConnection.query(connections.WORKSPACE_PREFIX + (workspace or "-"))
               if c.connection_id == connection_id]  # fmt: skip
    if pointer is None:
        return None
    assert len(entries) == 1, "a pointer without its workspace entry"
    return entries[0], pointer


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def audit_event(workspace_id: str, actor_id: str, **extra: Any) -> dict[str, Any]:
    number = next(_sequence)
    return {
        "id": f"evt_01JTEST{number:019d}",
        "type": "contact.updated",
        "occurred_at": "2026-12-04T23:59:59.123456Z",
        "workspace_id": workspace_id,
        "actor_id": actor_id,
        "resource_id": "01JCONTACT",
        "contact_id": "01JCONTACT",
        "changes": {"company": ["Acme", "Globex"]},
        "data": {"id": "01JCONTACT", "first_name": "Ada", "company": "Globex"},
        **extra,
    }


def push(client: Client, *records: dict[str, Any]) -> list[str]:
    """Run the fan-out; the sequence numbers it reported as failed."""
    result = client.lambda_.invoke("push_live_updates", {"Records": list(records)}).payload
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


@dataclass
class ManagementApi:
    """What the fan-out asked of API Gateway's Management API, and how it is answered."""

    posts: list[tuple[str, str]] = field(default_factory=list)  # (connection id, message)
    closed: list[str] = field(default_factory=list)
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)  # connection id -> (status, error code)

    def to(self, connection_id: str) -> list[dict[str, Any]]:
        return [json.loads(message) for target, message in self.posts if target == connection_id]


def _answer(status: int, code: str | None) -> tuple[object, dict[str, Any]]:
    http = type("Http", (), {"status_code": status, "headers": {}})()
    parsed: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": status}}
    if code:
        parsed["Error"] = {"Code": code, "Message": ""}
    return http, parsed


@pytest.fixture
def management(limits: Callable[..., None], dynamodb: CallCounter) -> Iterator[ManagementApi]:
    """The deployed fan-out's endpoint, its calls answered at the SDK boundary (200 unless told)."""
    limits(websocket_management_endpoint=MANAGEMENT)
    api = ManagementApi()
    events = management_client().meta.events

    def post(params: dict[str, Any], **_: Any) -> Any:
        connection_id = unquote(params["url_path"].rsplit("/", 1)[1])
        status, code = api.answers.get(connection_id, (200, ""))
        if status == 200:
            api.posts.append((connection_id, params["body"].decode()))
        return _answer(status, code or None)

    def close(params: dict[str, Any], **_: Any) -> Any:
        api.closed.append(unquote(params["url_path"].rsplit("/", 1)[1]))
        return _answer(204, None)

    events.register_first("before-call.apigatewaymanagementapi.PostToConnection", post)
    events.register_first("before-call.apigatewaymanagementapi.DeleteConnection", close)
    try:
        yield api
    finally:
        events.unregister("before-call.apigatewaymanagementapi.PostToConnection", post)
        events.unregister("before-call.apigatewaymanagementapi.DeleteConnection", close)


@contextmanager
def no_calls(counter: CallCounter) -> Iterator[None]:
    counter.reset()
    yield
    assert counter.calls == [], counter.calls


# ---- $connect ----------------------------------------------------------------------------


def test_a_valid_token_connects_and_is_stored_until_the_token_expires(
    chalice_client: Client, alice: Any, dynamodb: CallCounter
) -> None:
    dynamodb.reset()
    connection_id = connected(chalice_client, alice.token)
    assert dynamodb.calls == ["TransactWriteItems"]  # both items, one call
    found = stored(connection_id)
    assert found is not None
    entry, pointer = found
    token = claims(alice.token)
    assert (entry.pk, entry.sk) == (f"W#{token['wid']}", connection_id)
    assert (entry.workspace_id, entry.user_id, entry.role) == (token["wid"], token["sub"], "owner")
    assert pointer.workspace_id == token["wid"]
    assert entry.expires_at is not None and pointer.expires_at == entry.expires_at
    assert int(entry.expires_at.timestamp()) == token["exp"]  # 15 minutes: the token ends first


def test_a_connection_lasts_at_most_two_hours(chalice_client: Client, anon: Any, limits: Any) -> None:
    limits(access_token_minutes=24 * 60)
    day_long = anon.sign_up("dora")
    assert claims(day_long.token)["exp"] > time.time() + 23 * 3600
    found = stored(connected(chalice_client, day_long.token))
    assert found is not None and found[0].expires_at is not None
    assert found[0].expires_at.timestamp() <= time.time() + 2 * 3600


def _expired_token(alice: Any) -> str:
    """Alice's own token, as signed by the service, but expired a minute ago."""
    payload = {**claims(alice.token), "exp": int(time.time()) - 60, "iat": int(time.time()) - 960}
    payload["nbf"] = payload["iat"]
    return jwt.encode(payload, TEST_SECRET, algorithm="HS256", headers={"typ": "at+jwt"})


def _forged_token(alice: Any) -> str:
    return jwt.encode(claims(alice.token), "another-secret-0123456789abcdef01234567", algorithm="HS256",
                      headers={"typ": "at+jwt"})  # fmt: skip


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda alice: None, id="missing"),
        pytest.param(lambda alice: "", id="empty"),
        pytest.param(lambda alice: "not-a-token", id="malformed"),
        pytest.param(_expired_token, id="expired"),
        pytest.param(_forged_token, id="forged"),
        pytest.param(lambda alice: alice.refresh_token, id="a-refresh-token"),
    ],
)
def test_a_bad_token_is_refused_with_401_and_nothing_is_stored(
    chalice_client: Client, alice: Any, dynamodb: CallCounter, token: Callable[[Any], str | None]
) -> None:
    dynamodb.reset()
    connection_id, answer = connect(chalice_client, token(alice))
    assert answer["statusCode"] == 401
    assert answer["headers"]["Content-Type"] == "application/problem+json"
    problem = json.loads(answer["body"])
    assert (problem["status"], problem["title"]) == (401, "Unauthorized")
    assert "token" in problem["detail"]
    assert dynamodb.calls == []  # verified from the token alone: nothing read, nothing stored
    assert stored(connection_id) is None


def test_a_store_outage_refuses_the_connection_with_503(chalice_client: Client, alice: Any) -> None:
    with answering("TransactWriteItems", lambda _: dynamodb_error("ProvisionedThroughputExceededException")):
        connection_id, answer = connect(chalice_client, alice.token)
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["status"] == 503
    assert stored(connection_id) is None


# ---- messages and $disconnect --------------------------------------------------------------


def test_ping_answers_pong_and_anything_else_an_error_without_the_store(
    chalice_client: Client, alice: Any, dynamodb: CallCounter
) -> None:
    connection_id = connected(chalice_client, alice.token)

    def say(body: str | None) -> dict[str, Any]:
        event = websocket_event("$default", connection_id, body=body)
        answer = chalice_client.lambda_.invoke("ws_message", event).payload
        assert answer["statusCode"] == 200
        return dict(json.loads(answer["body"]))

    with no_calls(dynamodb):
        assert say(json.dumps({"action": "ping"})) == {"type": "pong"}
        for other in ('{"action": "subscribe"}', "hello", "[1, 2]", "", None):
            answer = say(other)
            assert answer["type"] == "error" and "ping" in answer["detail"], other


def test_disconnect_deletes_the_connection(chalice_client: Client, alice: Any, dynamodb: CallCounter) -> None:
    connection_id = connected(chalice_client, alice.token)
    event = websocket_event("$disconnect", connection_id, closed=(1001, "Going away"))
    dynamodb.reset()
    assert chalice_client.lambda_.invoke("ws_disconnect", event).payload["statusCode"] == 200
    assert dynamodb.calls == ["GetItem", "TransactWriteItems"]
    assert stored(connection_id) is None
    # A connection that was never stored (refused, or cleaned up by the fan-out): nothing to do.
    dynamodb.reset()
    assert chalice_client.lambda_.invoke("ws_disconnect", event).payload["statusCode"] == 200
    assert dynamodb.calls == ["GetItem"]


# ---- the fan-out ---------------------------------------------------------------------------


@dataclass
class Team:
    workspace: str
    alice: str  # alice's connection into the team
    bob: str  # bob's (an editor's) connection into the team
    alice_personal: str  # alice's connection into her own workspace
    carol: str  # a stranger's connection into her own workspace
    bob_id: str


@pytest.fixture
def team(chalice_client: Client, alice: Any, bob: Any, anon: Any) -> Team:
    workspace = new_workspace(alice)
    add(alice, workspace, "bob", "editor")
    carol = anon.sign_up("carol")
    return Team(
        workspace=workspace,
        alice=connected(chalice_client, acting_in(alice, workspace).token),
        bob=connected(chalice_client, acting_in(bob, workspace).token),
        alice_personal=connected(chalice_client, alice.token),
        carol=connected(chalice_client, carol.token),
        bob_id=claims(bob.token)["sub"],
    )


def test_an_event_reaches_its_workspace_connections_only(
    chalice_client: Client, team: Team, management: ManagementApi, dynamodb: CallCounter
) -> None:
    event = audit_event(team.workspace, team.bob_id)
    dynamodb.reset()
    assert push(chalice_client, audit_record(event)) == []
    assert dynamodb.calls == ["Query"]  # one Query per event: the workspace's connections
    assert management.to(team.alice) == [event]  # the colleague's edit, as the event's JSON
    assert management.to(team.bob) == [event]  # the actor's other tabs see it too
    assert management.to(team.alice_personal) == [] and management.to(team.carol) == []
    assert len(management.posts) == 2


def test_a_gone_connection_is_deleted_and_the_others_still_get_the_event(
    chalice_client: Client, team: Team, management: ManagementApi
) -> None:
    management.answers[team.alice] = (410, "GoneException")
    event = audit_event(team.workspace, team.bob_id)
    assert push(chalice_client, audit_record(event)) == []
    assert stored(team.alice) is None
    assert stored(team.bob) is not None and management.to(team.bob) == [event]
    management.posts.clear()
    assert push(chalice_client, audit_record(audit_event(team.workspace, team.bob_id))) == []
    assert [target for target, _ in management.posts] == [team.bob]


def test_another_failure_to_post_is_not_retried_through_the_stream(
    chalice_client: Client, team: Team, management: ManagementApi
) -> None:
    """A refused post (403 here, not retried by botocore) fails that connection only: the record
    succeeds (a retry would post again to every other connection) and the connection is kept."""
    management.answers[team.alice] = (403, "ForbiddenException")
    event = audit_event(team.workspace, team.bob_id)
    assert push(chalice_client, audit_record(event)) == []
    assert management.to(team.bob) == [event]
    assert stored(team.alice) is not None


def test_the_system_actor_is_skipped(
    chalice_client: Client, team: Team, management: ManagementApi, dynamodb: CallCounter
) -> None:
    """The normalizer's write-back (actor "system") is not a user change: nothing is pushed."""
    dynamodb.reset()
    assert push(chalice_client, audit_record(audit_event(team.workspace, "system"))) == []
    assert management.posts == [] and dynamodb.calls == []


@pytest.mark.parametrize("name", ["MODIFY", "REMOVE"])
def test_records_other_than_inserts_are_not_events(
    chalice_client: Client, team: Team, management: ManagementApi, name: str
) -> None:
    assert push(chalice_client, audit_record(audit_event(team.workspace, team.bob_id), name)) == []
    assert management.posts == []


def test_a_replayed_record_posts_the_same_event_again(
    chalice_client: Client, team: Team, management: ManagementApi
) -> None:
    """At least once: the same record delivered twice posts twice, with the same event id."""
    record = audit_record(audit_event(team.workspace, team.bob_id))
    assert push(chalice_client, record) == [] and push(chalice_client, record) == []
    delivered = management.to(team.alice)
    assert len(delivered) == 2 and delivered[0]["id"] == delivered[1]["id"]


def test_an_expired_connection_is_closed_and_deleted(
    chalice_client: Client, team: Team, management: ManagementApi
) -> None:
    """Its token has expired: no event, the socket closed (the client reconnects with a fresh
    token), the items deleted without waiting for TTL."""
    stale = new_connection_id()
    connections.register(stale, team.workspace, team.bob_id, "editor", int(time.time()) - 1)
    assert push(chalice_client, audit_record(audit_event(team.workspace, team.bob_id))) == []
    assert management.closed == [stale] and management.to(stale) == []
    assert stored(stale) is None
    assert len(management.to(team.alice)) == 1


def test_an_event_over_the_message_limit_goes_without_its_data(
    chalice_client: Client, team: Team, management: ManagementApi
) -> None:
    body = "x" * (MAX_MESSAGE_BYTES + 1)
    event = audit_event(team.workspace, team.bob_id, type="note.created", data={"id": "01JNOTE", "body": body})
    assert push(chalice_client, audit_record(event)) == []
    (sent,) = management.to(team.alice)
    assert sent["truncated"] is True and "data" not in sent and "changes" not in sent
    assert {k: sent[k] for k in ("id", "type", "resource_id")} == {k: event[k] for k in ("id", "type", "resource_id")}


def test_a_store_that_cannot_answer_fails_the_record(
    chalice_client: Client, team: Team, management: ManagementApi
) -> None:
    """Nothing was posted, so the mapping's retry (then its dead-letter queue) loses nothing."""
    record = audit_record(audit_event(team.workspace, team.bob_id))
    with answering("Query", lambda _: dynamodb_error("ProvisionedThroughputExceededException")):
        assert push(chalice_client, record) == [record["eventID"]]
    assert management.posts == []


def test_a_gone_connection_that_cannot_be_deleted_now_is_left_to_its_ttl(
    chalice_client: Client, team: Team, management: ManagementApi
) -> None:
    """Failing the record would post the event again to every other connection: it succeeds."""
    management.answers[team.alice] = (410, "GoneException")
    event = audit_event(team.workspace, team.bob_id)
    with answering("TransactWriteItems", lambda _: dynamodb_error("ProvisionedThroughputExceededException")):
        assert push(chalice_client, audit_record(event)) == []
    assert management.to(team.bob) == [event]
    assert stored(team.alice) is not None  # until TTL, or the next event's 410
