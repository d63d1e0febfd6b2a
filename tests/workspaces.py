"""Helpers for the workspace tests: shared workspaces, members, tokens into a workspace, a
competing request between a request's reads and its write, and stream records of the
workspaces table (as Lambda delivers them)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib import runtime
from chalicelib.models import Workspace, dynamodb_client
from tests.api import PASSWORD, Api

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/contact-notes-workspaces/stream/2026-01-01T00:00:00.000"
_sequence = itertools.count(1)


def token_reply(api: Api, username: str, workspace_id: str | None) -> Any:
    form = f"username={username}&password={PASSWORD}"
    if workspace_id is not None:
        form += f"&workspace_id={workspace_id}"
    return api.token_form(form.encode())


def acting_in(api: Api, workspace_id: str) -> Api:
    """The same user with a token into a workspace."""
    reply = token_reply(api, api.user["username"], workspace_id)
    assert reply.status == 200, reply.body
    return Api(api.client, token=reply.json["access_token"], user=api.user)


def new_workspace(api: Api, name: str = "Team") -> str:
    reply = api.post("/workspaces", {"name": name})
    assert reply.status == 201, reply.body
    return str(reply.json["id"])


def add(api: Api, workspace_id: str, username: str, role: str) -> None:
    reply = api.post(f"/workspaces/{workspace_id}/members", {"username": username, "role": role})
    assert reply.status == 201, reply.body


def removal(workspace: Workspace) -> dict[str, Any]:
    """The REMOVE record of a deleted workspace item (NEW_AND_OLD_IMAGES)."""
    sequence = f"{next(_sequence):021d}"
    change = {
        "ApproximateCreationDateTime": int(time.time()),
        "Keys": {"workspace_id": {"S": workspace.workspace_id}},
        "OldImage": workspace.serialize(),
        "SequenceNumber": sequence,
        "SizeBytes": 128,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    return {
        "eventID": sequence,
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    }


WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


@contextmanager
def before_first_write(act: Callable[[], None]) -> Iterator[None]:
    """Run `act` just before a request's first write (the rate limiter's aside), whichever
    operation it is: a competing request lands between what the request read and what it
    writes, at the SDK boundary (nothing of ours patched)."""
    limiter_table = runtime.settings().rate_limits_table
    events = dynamodb_client().meta.events
    fired: list[bool] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        if not fired and model.name in WRITES and params.get("TableName") != limiter_table:
            fired.append(True)
            act()

    events.register_first("before-parameter-build.dynamodb", hook)
    try:
        yield
    finally:
        events.unregister("before-parameter-build.dynamodb", hook)
    assert fired, "no write was sent"
