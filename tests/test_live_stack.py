"""Live updates through `make run`'s stack: a WebSocket client (the `websockets` library) on the
local endpoint, the stand-in for API Gateway (devtools.live_gateway), the audit stream's pump
and the fan-out, with the store in a moto server of its own so that the test can read and write
its tables.

The events are real: a colleague's request through the REST API, its contacts stream pumped to
the change-event consumer, the audit log's stream pumped to the fan-out, the stand-in's
Management API posting to the socket (bench/live.py measures that path).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.stack import Stack, free_port, poll, signed_in, start_moto_server, start_stack, stop_process

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
DEADLINE_SECONDS = 10.0  # generous for a loaded test machine; bench/live.py measures the latency


@pytest.fixture(scope="module")
def store() -> Iterator[str]:
    port = free_port()
    process = start_moto_server(port, env=CREDENTIALS)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def stack(store: str) -> Iterator[Stack]:
    running = start_stack({"DYNAMODB_ENDPOINT": store, **CREDENTIALS})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def dynamodb(store: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=store, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip


def token(stack: Stack, username: str, workspace_id: str | None = None) -> str:
    form = {"username": username, "password": "long enough", **({"workspace_id": workspace_id} if workspace_id else {})}
    reply = requests.post(stack.base + "/api/v1/auth/token", data=form, timeout=10)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def workspace_of(access_token: str) -> str:
    return str(jwt.decode(access_token, options={"verify_signature": False})["wid"])


def user_of(access_token: str) -> str:
    return str(jwt.decode(access_token, options={"verify_signature": False})["sub"])


def shared_workspace(stack: Stack, owner: str, member: str) -> str:
    """A workspace of `owner`'s with `member` as an editor (both registered here)."""
    headers = signed_in(stack.base, owner)
    signed_in(stack.base, member)
    api = stack.base + "/api/v1"
    team = requests.post(api + "/workspaces", json={"name": "Team"}, headers=headers, timeout=10).json()["id"]
    added = requests.post(f"{api}/workspaces/{team}/members", json={"username": member, "role": "editor"},
                          headers=headers, timeout=10)  # fmt: skip
    assert added.status_code == 201, added.text
    return str(team)


def write(stack: Stack, access_token: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A change through the REST API, as the holder of `access_token`."""
    headers = {"Authorization": f"Bearer {access_token}"}
    reply = requests.request(method, f"{stack.base}/api/v1{path}", json=body, headers=headers, timeout=10)
    assert reply.status_code in (200, 201), reply.text
    return dict(reply.json())


def receive(socket: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(socket.recv(timeout=DEADLINE_SECONDS)))


def connections_of(dynamodb: Any, workspace_id: str) -> list[str]:
    key = {":pk": {"S": f"W#{workspace_id}"}}
    found = dynamodb.query(TableName="contact-notes-connections", KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues=key, ConsistentRead=True)  # fmt: skip
    return [item["sk"]["S"] for item in found["Items"]]


def test_the_endpoint_is_printed_at_start(stack: Stack) -> None:
    assert f"live updates on {stack.ws}/?token=" in stack.output()


def test_a_colleagues_edit_arrives_and_other_workspaces_see_nothing(stack: Stack) -> None:
    team = shared_workspace(stack, "live_alice", "live_bob")
    bob_token = token(stack, "live_bob", team)
    signed_in(stack.base, "live_carol")
    carol_token, alice_personal_token = token(stack, "live_carol"), token(stack, "live_alice")
    contact = write(stack, bob_token, "POST", "/contacts", {"first_name": "Ada", "title": "CTO"})
    with (
        connect(f"{stack.ws}/?token={token(stack, 'live_alice', team)}") as alice,
        connect(f"{stack.ws}/?token={alice_personal_token}") as alice_personal,
        connect(f"{stack.ws}/?token={carol_token}") as carol,
    ):
        started = time.monotonic()
        edited = write(stack, bob_token, "PATCH", f"/contacts/{contact['id']}", {"title": "CEO"})
        event = receive(alice)
        while event["type"] == "contact.created":  # the creation, if its event came after connecting
            event = receive(alice)
        assert time.monotonic() - started < DEADLINE_SECONDS
        assert (event["type"], event["actor_id"], event["workspace_id"]) == (
            "contact.updated",
            user_of(bob_token),
            team,
        )
        assert event["changes"] == {"title": ["CTO", "CEO"]} and event["data"] == edited
        # Isolation: the next message each other socket gets is its own workspace's next event.
        for socket, access_token in ((alice_personal, alice_personal_token), (carol, carol_token)):
            own = write(stack, access_token, "POST", "/contacts", {"first_name": "Own"})
            message = receive(socket)
            assert (message["type"], message["resource_id"]) == ("contact.created", own["id"])
            assert message["workspace_id"] == workspace_of(access_token)


def test_a_bad_token_is_refused_with_401(stack: Stack) -> None:
    for query in ("?token=not-a-token", "", "?token="):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{stack.ws}/{query}")
        assert refused.value.response.status_code == 401
        problem = json.loads(bytes(refused.value.response.body or b""))
        assert (problem["status"], problem["title"]) == (401, "Unauthorized")


def test_ping_is_answered_through_the_endpoint(stack: Stack) -> None:
    signed_in(stack.base, "live_pinger")
    with connect(f"{stack.ws}/?token={token(stack, 'live_pinger')}") as socket:
        socket.send(json.dumps({"action": "ping"}))
        assert receive(socket) == {"type": "pong"}
        socket.send("anything else")
        assert receive(socket)["type"] == "error"


def test_a_closed_socket_is_forgotten(stack: Stack, dynamodb: Any) -> None:
    signed_in(stack.base, "live_leaver")
    access_token = token(stack, "live_leaver")
    workspace = workspace_of(access_token)
    with connect(f"{stack.ws}/?token={access_token}"):
        assert len(poll(lambda: connections_of(dynamodb, workspace))) == 1
    poll(lambda: connections_of(dynamodb, workspace) == [], DEADLINE_SECONDS)


def test_a_gone_connection_is_cleaned_up_by_the_fan_out(stack: Stack, dynamodb: Any) -> None:
    """A connection the store still lists but the endpoint no longer has (its $disconnect was
    lost): the stand-in answers the post 410 GoneException, and the fan-out deletes it."""
    signed_in(stack.base, "live_ghost")
    access_token = token(stack, "live_ghost")
    workspace = workspace_of(access_token)
    ghost = "Z2hvc3QtY29ubg0="
    expires = str(int(time.time()) + 600)
    for pk, sk in ((f"W#{workspace}", ghost), (f"C#{ghost}", "C#")):
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "workspace_id": {"S": workspace}, "connection_id": {"S": ghost},
                "expires_at": {"N": expires}}  # fmt: skip
        dynamodb.put_item(TableName="contact-notes-connections", Item=item)
    with connect(f"{stack.ws}/?token={access_token}") as socket:
        created = write(stack, access_token, "POST", "/contacts", {"first_name": "Boo"})
        assert receive(socket)["resource_id"] == created["id"]  # the live connection still gets it
        poll(lambda: ghost not in connections_of(dynamodb, workspace), DEADLINE_SECONDS)
        assert connections_of(dynamodb, workspace) != []  # the live one is kept
