"""Contacts CRUD through HTTP over moto: shapes, normalization, validation, paging, deletion."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from chalicelib.models import Contact, Note
from tests.conftest import Api, problem

JOHN = {
    "first_name": "John",
    "last_name": "Doe",
    "email": "john@example.com",
    "phone": "1234567890",
    "company": "Example Corp",
    "title": "Developer",
}


_numbers = itertools.count(1)


def _create(api: Api, **fields: Any) -> dict[str, Any]:
    """JOHN, or what differs from him, with an email of its own (one contact per email)."""
    email = {"email": f"john.{next(_numbers)}@example.com"}
    reply = api.post("/contacts", {**JOHN, **email, **fields})
    assert reply.status == 201, reply.body
    return reply.json  # type: ignore[no-any-return]


def test_create_returns_the_stored_contact(alice: Api) -> None:
    reply = alice.post("/contacts/", JOHN)  # the seed README's trailing slash
    assert reply.status == 201
    contact = reply.json
    assert {k: contact[k] for k in JOHN} == JOHN
    assert contact["phone_e164"] is None  # the seed's 1234567890 does not parse: kept, not refused
    assert contact["created_at"] == contact["updated_at"]
    assert contact["created_at"].endswith("Z")
    assert contact["version"] == 1
    assert reply.header("etag") == f'"{contact["id"]}-1"'  # strong, and no other item's
    assert alice.get(f"/contacts/{contact['id']}").json == contact


def test_create_normalizes_fields(alice: Api) -> None:
    contact = _create(
        alice,
        first_name="  Ada ",
        last_name="   ",
        email="Ada.Lovelace@Example.ORG",
        phone=" (650) 253-0000 ",
        company="\tAnalytical Engines\t",
        title="",
    )
    assert contact["first_name"] == "Ada"
    assert contact["last_name"] is None
    assert contact["email"] == "Ada.Lovelace@example.org"
    assert contact["phone"] == "(650) 253-0000"
    assert contact["phone_e164"] == "+16502530000"
    assert contact["company"] == "Analytical Engines"
    assert contact["title"] is None


def test_international_phone_is_parsed_regardless_of_default_region(alice: Api) -> None:
    assert _create(alice, phone="+44 20 7946 0958")["phone_e164"] == "+442079460958"


def test_only_first_name_is_required(alice: Api) -> None:
    reply = alice.post("/contacts", {"first_name": "Solo"})
    assert reply.status == 201
    assert reply.json["last_name"] is None and reply.json["email"] is None


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"first_name": ""}, "#/first_name"),
        ({"first_name": "   "}, "#/first_name"),
        ({"first_name": None}, "#/first_name"),
        ({"first_name": "x" * 101}, "#/first_name"),
        ({"first_name": 42}, "#/first_name"),
        ({"first_name": "Bell\u0007"}, "#/first_name"),
        ({"first_name": "two\nlines"}, "#/first_name"),
        ({"last_name": "x" * 101}, "#/last_name"),
        ({"email": "john-at-example.com"}, "#/email"),
        ({"email": "john@"}, "#/email"),
        ({"phone": "9" * 41}, "#/phone"),
        ({"company": "c" * 201}, "#/company"),
        ({"title": ["list"]}, "#/title"),
        ({"id": "01M8FP1CYTGFW5FGC7TXSJ3ETH"}, "#/id"),
        ({"owner_id": "someone"}, "#/owner_id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "#/created_at"),
        ({"version": 7}, "#/version"),
        ({"phone_e164": "+1"}, "#/phone_e164"),
    ],
)
def test_create_rejects_invalid_or_unknown_fields(alice: Api, fields: dict[str, Any], pointer: str) -> None:
    body = problem(alice.post("/contacts", {**JOHN, **fields}), 422)
    assert [e["pointer"] for e in body["errors"]] == [pointer]


def test_missing_first_name(alice: Api) -> None:
    body = problem(alice.post("/contacts", {"last_name": "Doe"}), 422)
    assert body["errors"][0]["pointer"] == "#/first_name"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{", 400),
        (b'{"first_name": "a",}', 400),
        (b'{"first_name": "a", "first_name": "b"}', 400),
        (b'{"first_name": NaN}', 400),
        (b"\xff\xfe", 400),
        (b"", 400),
        (b"[1, 2]", 422),
        (b'"just a string"', 422),
        (b"null", 422),
        (b"[" * 100_000, 400),
    ],
)
def test_malformed_bodies(alice: Api, raw: bytes, status: int) -> None:
    reply = alice.request("POST", "/contacts", raw=raw, headers={"content-type": "application/json"})
    problem(reply, status)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(alice: Api, content_type: str) -> None:
    reply = alice.request("POST", "/contacts", raw=b"first_name=x", headers={"content-type": content_type})
    problem(reply, 415)


def test_json_with_charset_is_accepted(alice: Api) -> None:
    reply = alice.request(
        "POST",
        "/contacts",
        raw='{"first_name": "Zoë"}'.encode(),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert reply.status == 201
    assert reply.json["first_name"] == "Zoë"


def test_oversized_body_is_413(alice: Api) -> None:
    huge = b'{"first_name": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    reply = alice.request("POST", "/contacts", raw=huge, headers={"content-type": "application/json"})
    problem(reply, 413)


# ---- read, replace, patch -------------------------------------------------------------------


@pytest.mark.parametrize(
    "contact_id", ["01M8FP1CYTGFW5FGC7TXSJ3ETH", "not-an-id", "x" * 3000, "01m8fp1cytgfw5fgc7txsj3eth"]
)
def test_unknown_contact_is_404_for_every_method(alice: Api, contact_id: str) -> None:
    problem(alice.get(f"/contacts/{contact_id}"), 404)
    problem(alice.put(f"/contacts/{contact_id}", JOHN), 404)
    problem(alice.patch(f"/contacts/{contact_id}", {"title": "x"}), 404)
    problem(alice.delete(f"/contacts/{contact_id}"), 404)


def test_put_replaces_the_whole_contact(alice: Api) -> None:
    created = _create(alice)
    reply = alice.put(f"/contacts/{created['id']}", {"first_name": "Jane", "phone": "+1 650 253 0000"})
    assert reply.status == 200
    updated = reply.json
    assert updated["first_name"] == "Jane"
    assert updated["phone_e164"] == "+16502530000"
    for cleared in ("last_name", "email", "company", "title"):
        assert updated[cleared] is None
    assert updated["id"] == created["id"]
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] >= created["updated_at"]
    assert updated["version"] == 2
    assert reply.header("etag") == f'"{created["id"]}-2"'
    assert alice.get(f"/contacts/{created['id']}").json == updated


def test_put_validates_like_create(alice: Api) -> None:
    created = _create(alice)
    problem(alice.put(f"/contacts/{created['id']}", {"last_name": "only"}), 422)
    problem(alice.put(f"/contacts/{created['id']}", {**JOHN, "id": "other"}), 422)
    assert alice.get(f"/contacts/{created['id']}").json == created  # nothing changed


def test_patch_changes_only_the_fields_sent(alice: Api) -> None:
    created = _create(alice)
    reply = alice.patch(f"/contacts/{created['id']}", {"title": " CTO ", "phone": "650-253-0000"})
    assert reply.status == 200
    patched = reply.json
    assert patched["title"] == "CTO"
    assert patched["phone_e164"] == "+16502530000"
    unchanged = {k: created[k] for k in ("first_name", "last_name", "email", "company")}
    assert {k: patched[k] for k in unchanged} == unchanged
    assert patched["version"] == 2


def test_patch_null_clears_an_optional_field(alice: Api) -> None:
    created = _create(alice)
    patched = alice.patch(f"/contacts/{created['id']}", {"email": None, "phone": None}).json
    assert patched["email"] is None
    assert patched["phone"] is None and patched["phone_e164"] is None
    assert patched["last_name"] == "Doe"


def test_patch_accepts_merge_patch_media_type(alice: Api) -> None:
    created = _create(alice)
    reply = alice.request(
        "PATCH",
        f"/contacts/{created['id']}",
        raw=b'{"company": "New Co"}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert reply.status == 200
    assert reply.json["company"] == "New Co"


@pytest.mark.parametrize(
    "body",
    [{}, {"first_name": None}, {"first_name": ""}, {"email": "bad"}, {"id": "x"}, {"created_at": "x"}],
)
def test_patch_rejects_bad_changes(alice: Api, body: dict[str, Any]) -> None:
    created = _create(alice)
    problem(alice.patch(f"/contacts/{created['id']}", body), 422)
    assert alice.get(f"/contacts/{created['id']}").json == created


def test_if_match_guards_against_lost_updates(alice: Api) -> None:
    created = _create(alice)
    path = f"/contacts/{created['id']}"
    held = alice.get(path).header("etag") or ""
    first = alice.patch(path, {"title": "A"}, headers={"if-match": held})
    assert first.status == 200
    stale = alice.patch(path, {"title": "B"}, headers={"if-match": held})
    problem(stale, 412)
    problem(alice.put(path, JOHN, headers={"if-match": held}), 412)
    problem(alice.delete(path, headers={"if-match": held}), 412)
    assert alice.get(path).json["title"] == "A"
    problem(alice.patch(path, {"title": "B"}, headers={"if-match": "garbage"}), 400)
    third = alice.patch(path, {"title": "B"}, headers={"if-match": "*"})
    assert third.json["version"] == 3
    assert alice.patch(path, {"title": "C"}, headers={"if-match": third.header("etag") or ""}).status == 200
    assert alice.delete(path, headers={"if-match": f'"{created["id"]}-4"'}).status == 204


# ---- lists ---------------------------------------------------------------------------------


def test_list_pages_newest_first_with_a_cursor(alice: Api) -> None:
    made = [_create(alice, first_name=f"P{i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = alice.get("/contacts" + query).json
        pages += 1
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    assert pages == 3


def test_exact_page_has_no_cursor(alice: Api) -> None:
    for i in range(2):
        _create(alice, first_name=f"E{i}")
    page = alice.get("/contacts?limit=2").json
    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


def test_list_default_limit_is_50(alice: Api) -> None:
    for i in range(51):
        _create(alice, first_name=f"D{i}")
    page = alice.get("/contacts").json
    assert len(page["items"]) == 50
    assert page["next_cursor"]


@pytest.mark.parametrize("query", ["?limit=0", "?limit=101", "?limit=abc", "?limit=-1", "?limit=1.5"])
def test_bad_limit_is_422(alice: Api, query: str) -> None:
    body = problem(alice.get("/contacts" + query), 422)
    assert body["errors"][0]["pointer"] == "#/query/limit"


@pytest.mark.parametrize("cursor", ["garbage", "AAAA", "YzE", "%00", "Zm9v" * 40, "x" * 600, "", "été"])
def test_garbage_cursor_is_400(alice: Api, cursor: str) -> None:
    problem(alice.get(f"/contacts?cursor={cursor}"), 400)


def test_tampered_and_foreign_cursors_are_400(alice: Api, bob: Api) -> None:
    for i in range(3):
        _create(alice, first_name=f"T{i}")
    cursor = alice.get("/contacts?limit=1").json["next_cursor"]
    assert alice.get(f"/contacts?cursor={cursor}&limit=1").status == 200
    problem(bob.get(f"/contacts?cursor={cursor}"), 400)
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    problem(alice.get(f"/contacts?cursor={flipped}"), 400)
    contact_id = alice.get("/contacts").json["items"][0]["id"]
    problem(alice.get(f"/contacts/{contact_id}/notes?cursor={cursor}"), 400)  # another list's cursor


# ---- delete ------------------------------------------------------------------------------


def test_delete_removes_the_contact_and_its_notes(alice: Api) -> None:
    contact = _create(alice)
    other = _create(alice, first_name="Keep")
    notes = [alice.post(f"/contacts/{contact['id']}/notes", {"body": f"n{i}"}).json["id"] for i in range(30)]
    kept = alice.post(f"/contacts/{other['id']}/notes", {"body": "stays"}).json["id"]

    reply = alice.delete(f"/contacts/{contact['id']}")
    assert reply.status == 204
    assert reply.body == b""
    problem(alice.get(f"/contacts/{contact['id']}"), 404)
    problem(alice.get(f"/contacts/{contact['id']}/notes"), 404)
    for note_id in notes[:3]:
        problem(alice.get(f"/notes/{note_id}"), 404)
    problem(alice.post(f"/contacts/{contact['id']}/notes", {"body": "late"}), 404)
    # Removed from storage, not only hidden:
    owner = alice.user["id"]
    assert [n.note_id for n in Note.query(owner)] == [kept]
    assert [c.contact_id for c in Contact.query(owner)] == [other["id"]]
    problem(alice.delete(f"/contacts/{contact['id']}"), 404)
