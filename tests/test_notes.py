"""Notes CRUD through HTTP over moto: nested and flat paths, validation, paging."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, problem


@pytest.fixture
def contact(alice: Api) -> dict[str, Any]:
    return alice.post("/contacts", {"first_name": "John"}).json  # type: ignore[no-any-return]


def test_create_nested_and_flat(alice: Api, contact: dict[str, Any]) -> None:
    nested = alice.post(f"/contacts/{contact['id']}/notes", {"body": "Met at the conference."})
    flat = alice.post("/notes", {"contact_id": contact["id"], "body": "Follow up in May."})
    for reply, text in ((nested, "Met at the conference."), (flat, "Follow up in May.")):
        assert reply.status == 201, reply.body
        note = reply.json
        assert set(note) == {
            "id", "contact_id", "body", "original_body", "tags", "processing_status", "processed_at",
            "normalizer_version", "failure_reason", "created_at", "updated_at", "version",
        }  # fmt: skip
        assert note["processing_status"] == "pending"
        assert note["contact_id"] == contact["id"]
        assert note["body"] == text
        assert note["version"] == 1
        assert reply.header("etag") == f'"{note["id"]}-1"'
        assert alice.get(f"/notes/{note['id']}").json == note


def test_body_is_kept_exactly(alice: Api, contact: dict[str, Any]) -> None:
    text = "  Émoji 👩🏽‍💻, RTL: שלום, combining: e\u0301\n\ttabbed  "
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": text}).json
    assert note["body"] == text
    assert alice.get(f"/notes/{note['id']}").json["body"] == text


def test_body_at_the_limit_is_accepted(alice: Api, contact: dict[str, Any]) -> None:
    text = "😀" * 100_000  # 100,000 characters, 400,000 bytes of UTF-8
    reply = alice.post(f"/contacts/{contact['id']}/notes", {"body": text})
    assert reply.status == 201, reply.body[:300]
    assert alice.get(f"/notes/{reply.json['id']}").json["body"] == text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"body": ""},
        {"body": "   \n\t "},
        {"body": None},
        {"body": 5},
        {"body": "x" * 100_001},
        {"body": "\x00\x01 \x7f"},
        {"body": "ok", "id": "01M8FP1CYTGFW5FGC7TXSJ3ETH"},
        {"body": "ok", "created_at": "2020-01-01T00:00:00Z"},
        {"body": "ok", "owner_id": "x"},
    ],
)
def test_create_rejects_bad_bodies(alice: Api, contact: dict[str, Any], body: dict[str, Any]) -> None:
    problem(alice.post(f"/contacts/{contact['id']}/notes", body), 422)
    assert alice.get(f"/contacts/{contact['id']}/notes").json["items"] == []


def test_flat_create_needs_a_real_contact(alice: Api) -> None:
    problem(alice.post("/notes", {"contact_id": "01M8FP1CYTGFW5FGC7TXSJ3ETH", "body": "x"}), 404)
    body = problem(alice.post("/notes", {"contact_id": "nope", "body": "x"}), 422)
    assert body["errors"][0]["pointer"] == "#/contact_id"
    problem(alice.post("/notes", {"body": "x"}), 422)


def test_nested_create_on_missing_contact_is_404(alice: Api) -> None:
    problem(alice.post("/contacts/01M8FP1CYTGFW5FGC7TXSJ3ETH/notes", {"body": "x"}), 404)
    problem(alice.post("/contacts/bad-id/notes", {"body": "x"}), 404)


def test_list_is_newest_first_and_pages(alice: Api, contact: dict[str, Any]) -> None:
    other = alice.post("/contacts", {"first_name": "Other"}).json
    made = [alice.post(f"/contacts/{contact['id']}/notes", {"body": f"n{i}"}).json["id"] for i in range(5)]
    alice.post(f"/contacts/{other['id']}/notes", {"body": "elsewhere"})
    first = alice.get(f"/contacts/{contact['id']}/notes?limit=3").json
    assert [n["id"] for n in first["items"]] == list(reversed(made))[:3]
    second = alice.get(f"/contacts/{contact['id']}/notes?limit=3&cursor={first['next_cursor']}").json
    assert [n["id"] for n in second["items"]] == list(reversed(made))[3:]
    assert second["next_cursor"] is None
    assert all(n["body"].startswith("n") for n in first["items"] + second["items"])


def test_list_limit_is_validated(alice: Api, contact: dict[str, Any]) -> None:
    problem(alice.get(f"/contacts/{contact['id']}/notes?limit=0"), 422)
    problem(alice.get(f"/contacts/{contact['id']}/notes?limit=101"), 422)
    problem(alice.get(f"/contacts/{contact['id']}/notes?cursor=garbage"), 400)


def test_put_and_patch_change_the_body(alice: Api, contact: dict[str, Any]) -> None:
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "first"}).json
    put = alice.put(f"/notes/{note['id']}", {"body": "second"})
    assert put.status == 200
    assert put.json["body"] == "second" and put.json["version"] == 2
    patched = alice.patch(f"/notes/{note['id']}", {"body": "third"}, headers={"if-match": put.header("etag") or ""})
    assert patched.status == 200
    assert patched.json["body"] == "third" and patched.json["version"] == 3
    assert patched.json["created_at"] == note["created_at"]
    assert patched.json["contact_id"] == contact["id"]
    stale = {"if-match": put.header("etag") or ""}
    problem(alice.patch(f"/notes/{note['id']}", {"body": "stale"}, headers=stale), 412)
    assert alice.get(f"/notes/{note['id']}").json["body"] == "third"


@pytest.mark.parametrize("body", [{}, {"body": " "}, {"body": "x", "contact_id": "01M8FP1CYTGFW5FGC7TXSJ3ETH"}])
def test_update_rejects_bad_bodies(alice: Api, contact: dict[str, Any], body: dict[str, Any]) -> None:
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "keep"}).json
    problem(alice.put(f"/notes/{note['id']}", body), 422)
    problem(alice.patch(f"/notes/{note['id']}", body), 422)
    assert alice.get(f"/notes/{note['id']}").json == note


def test_delete_note(alice: Api, contact: dict[str, Any]) -> None:
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "bye"}).json
    reply = alice.delete(f"/notes/{note['id']}")
    assert reply.status == 204
    problem(alice.get(f"/notes/{note['id']}"), 404)
    problem(alice.delete(f"/notes/{note['id']}"), 404)
    problem(alice.put(f"/notes/{note['id']}", {"body": "back?"}), 404)
    assert alice.get(f"/contacts/{contact['id']}/notes").json["items"] == []


@pytest.mark.parametrize("note_id", ["01M8FP1CYTGFW5FGC7TXSJ3ETH", "garbage", "%2e%2e"])
def test_unknown_note_is_404(alice: Api, note_id: str) -> None:
    problem(alice.get(f"/notes/{note_id}"), 404)
    problem(alice.patch(f"/notes/{note_id}", {"body": "x"}), 404)
    problem(alice.delete(f"/notes/{note_id}"), 404)


ALIASES = ["body", "note_body", "noteBody", "NoteBody", "NOTE_BODY", "content", "Content", "text", "TEXT",
           "note", "Note", "message", "MESSAGE", "Message"]  # fmt: skip


@pytest.mark.parametrize("alias", ALIASES)
def test_body_aliases_on_every_write(alice: Api, contact: dict[str, Any], alias: str) -> None:
    nested = alice.post(f"/contacts/{contact['id']}/notes", {alias: "via alias"})
    assert nested.status == 201, nested.body
    assert nested.json["body"] == "via alias"
    assert alias == "body" or alias not in nested.json
    flat = alice.post("/notes", {"contact_id": contact["id"], alias: "flat alias"})
    assert flat.status == 201
    assert flat.json["body"] == "flat alias"
    put = alice.put(f"/notes/{flat.json['id']}", {alias: "put alias"})
    assert put.json["body"] == "put alias"
    patch = alice.patch(f"/notes/{flat.json['id']}", {alias: "patch alias"})
    assert patch.json["body"] == "patch alias"


@pytest.mark.parametrize(("first", "second"), [("body", "content"), ("text", "message"), ("noteBody", "note_body")])
def test_two_aliases_are_422_naming_both(alice: Api, contact: dict[str, Any], first: str, second: str) -> None:
    body = problem(alice.post(f"/contacts/{contact['id']}/notes", {first: "a", second: "b"}), 422)
    assert first in body["detail"] and second in body["detail"]
    assert {e["pointer"] for e in body["errors"]} == {f"#/{first}", f"#/{second}"}
    problem(alice.patch("/notes/01M8FP1CYTGFW5FGC7TXSJ3ETH", {first: "a", second: "b"}), 422)


@pytest.mark.parametrize("near_miss", ["bodyText", "notes", "msg", "note-body", "Body_Text"])
def test_unknown_spellings_are_refused(alice: Api, contact: dict[str, Any], near_miss: str) -> None:
    problem(alice.post(f"/contacts/{contact['id']}/notes", {near_miss: "x"}), 422)


@pytest.mark.parametrize("invisible", ["\u200b", "\ufeff", "\u2060\u00ad", " \u200b\t"])
def test_invisible_only_body_is_blank(alice: Api, contact: dict[str, Any], invisible: str) -> None:
    problem(alice.post(f"/contacts/{contact['id']}/notes", {"body": invisible}), 422)
