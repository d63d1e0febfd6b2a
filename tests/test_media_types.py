"""Bodies are read under the media types the OpenAPI document describes: JSON for POST and PUT,
a JSON merge patch (RFC 7396) for PATCH, sent as application/merge-patch+json or application/json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api import Reply
from tests.conftest import Api, problem

MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture
def note(alice: Api) -> dict[str, Any]:
    contact = alice.post("/contacts", {"first_name": "John", "title": "CTO"}).json
    return alice.post(f"/contacts/{contact['id']}/notes", {"body": "Met at the conference."}).json  # type: ignore[no-any-return]


def _send(api: Api, method: str, path: str, body: dict[str, Any], content_type: str) -> Reply:
    return api.request(method, path, raw=json.dumps(body).encode(), headers={"content-type": content_type})


def test_post_and_put_refuse_a_merge_patch(alice: Api, note: dict[str, Any]) -> None:
    contact_id = note["contact_id"]
    contacts_before = alice.get("/contacts").json
    writes = [
        ("POST", "/contacts", {"first_name": "Ada"}),
        ("PUT", f"/contacts/{contact_id}", {"first_name": "Ada"}),
        ("POST", f"/contacts/{contact_id}/notes", {"body": "Another."}),
        ("POST", "/notes", {"contact_id": contact_id, "body": "Another."}),
        ("PUT", f"/notes/{note['id']}", {"body": "Changed."}),
    ]
    for method, path, body in writes:
        problem(_send(alice, method, path, body, MERGE_PATCH), 415)
    assert alice.get("/contacts").json == contacts_before
    assert alice.get(f"/contacts/{contact_id}/notes").json["items"] == [note]


def test_register_refuses_a_merge_patch(anon: Api) -> None:
    user = {"username": "mergepatch", "email": "mp@example.com", "password": "long enough password"}
    problem(_send(anon, "POST", "/auth/register", user, MERGE_PATCH), 415)
    assert anon.post("/auth/register", user, auth=False).status == 201  # nothing was stored


@pytest.mark.parametrize("content_type", ["application/json", MERGE_PATCH, MERGE_PATCH + "; charset=utf-8"])
def test_patch_takes_a_merge_patch_under_either_name(alice: Api, note: dict[str, Any], content_type: str) -> None:
    change = {"company": "New Co", "title": None}
    contact = _send(alice, "PATCH", f"/contacts/{note['contact_id']}", change, content_type)
    assert contact.status == 200, contact.body
    assert (contact.json["company"], contact.json["title"], contact.json["first_name"]) == ("New Co", None, "John")
    patched = _send(alice, "PATCH", f"/notes/{note['id']}", {"body": "Changed."}, content_type)
    assert patched.status == 200, patched.body
    assert alice.get(f"/notes/{note['id']}").json["body"] == "Changed."


def test_patch_refuses_other_media_types(alice: Api, note: dict[str, Any]) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/json-patch+json"):
        problem(_send(alice, "PATCH", f"/contacts/{note['contact_id']}", {"company": "X"}, content_type), 415)
    assert alice.get(f"/contacts/{note['contact_id']}").json["company"] is None
