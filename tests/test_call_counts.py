"""DynamoDB calls per request, counted through botocore's event hooks (deterministic)."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client

from bench.calls import (
    BUDGETS,
    README,
    ROUTES,
    CallCounter,
    Route,
    fill,
    readme_with_table,
    send_route,
    sender,
    world_for,
)
from bench.inprocess import authorizer_event
from tests.conftest import Api


def _sender(alice: Api) -> Any:
    def send(method: str, path: str, body: Any) -> Any:
        return alice.request(method, path, body).json

    return send


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_calls_per_request(alice: Api, dynamodb: CallCounter, route: Route) -> None:
    world = world_for([route], alice, _sender(alice))
    path, body = fill(route, world)
    caller = sender(alice, route, world)
    reply = send_route(alice if route.form else caller, route, path, body, dynamodb)
    assert reply.status == route.status, reply.body
    assert dynamodb.by_operation() == route.calls
    # The rate limiter adds exactly one call; a password change also reads the account's
    # lockout item (sign-in reads it with the username's claim), and a wrong password counts
    # the failure there.
    assert dynamodb.limiter_calls == route.limiter
    if route.budget:
        assert len(dynamodb.log) <= BUDGETS[route.budget]


def test_deleting_a_contact_whose_notes_were_deleted_still_sweeps(alice: Api, dynamodb: CallCounter) -> None:
    """The mark is never cleared: a contact that once had notes is swept (and answers 204)."""
    contact = alice.post("/contacts", {"first_name": "Once"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "gone"}).json
    assert alice.delete(f"/notes/{note['id']}").status == 204
    dynamodb.reset()
    assert alice.delete(f"/contacts/{contact['id']}").status == 204
    # The first transaction expects no notes mark: it fails, handing the contact back, which is
    # deleted as stored.
    assert dynamodb.by_operation() == {"TransactWriteItems": 2, "Query": 1}


def test_a_new_note_does_not_change_its_contacts_version(alice: Api) -> None:
    contact = alice.post("/contacts", {"first_name": "Etag"}).json
    alice.post(f"/contacts/{contact['id']}/notes", {"body": "x"})
    again = alice.get(f"/contacts/{contact['id']}")
    assert again.json == contact
    assert again.header("etag") == f'"{contact["id"]}-1"'


def test_authorizer_makes_no_calls(alice: Api, chalice_client: Client, dynamodb: CallCounter) -> None:
    dynamodb.reset()
    event = authorizer_event(alice.token or "")
    assert chalice_client.lambda_.invoke("jwt_auth", event).payload["principalId"]
    assert dynamodb.calls == []


def test_a_page_of_100_is_one_query(alice: Api, dynamodb: CallCounter) -> None:
    contact = alice.post("/contacts", {"first_name": "Many"}).json
    for i in range(120):
        alice.post(f"/contacts/{contact['id']}/notes", {"body": f"note {i}"})
    dynamodb.reset()
    page = alice.get(f"/contacts/{contact['id']}/notes?limit=100").json
    assert len(page["items"]) == 100
    assert dynamodb.by_operation() == {"GetItem": 1, "Query": 1}


def test_readme_table_is_the_route_table() -> None:
    """The README's calls table is generated from ROUTES, which the test above asserts."""
    text = README.read_text()
    assert text == readme_with_table(text), "README.md's calls table is stale: run `python -m bench.calls`"
