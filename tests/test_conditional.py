"""Conditional requests (#16): ETags on every authenticated read, 304 to If-None-Match, If-Match
naming the item, and the caching headers (private, no-cache on those reads; no-store elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from chalice.test import Client

from tests.conftest import Api, CallCounter, problem
from tests.search import index_now
from tests.stack import Stack, signed_in

APP = "https://app.example.com"
MISSING_ID = "01M8FP1CYTGFW5FGC7TXSJ3ETH"


def etag_of(reply: Any) -> str:
    tag = reply.header("etag")
    assert tag, reply.headers
    return str(tag)


def not_modified(reply: Any, tag: str) -> None:
    """A 304: no body, no Content-Type, the same validator and the caching headers."""
    assert reply.status == 304, reply.body
    assert reply.body == b""
    assert reply.header("content-type") is None
    assert reply.header("etag") == tag
    assert reply.header("cache-control") == "private, no-cache"
    assert "Authorization" in (reply.header("vary") or "")


def revalidated(api: Api, path: str, tag: str) -> Any:
    return api.get(path, headers={"If-None-Match": tag})


@pytest.fixture
def contact(alice: Api) -> dict[str, Any]:
    reply = alice.post("/contacts", {"first_name": "Ada", "last_name": "Lovelace"})
    assert reply.status == 201, reply.body
    return dict(reply.json)


# ---- items -----------------------------------------------------------------------------


def test_item_etags_are_strong_and_name_the_item(alice: Api) -> None:
    first = alice.post("/contacts", {"first_name": "One"})
    second = alice.post("/contacts", {"first_name": "Two"})
    assert first.json["version"] == second.json["version"] == 1
    assert etag_of(first) == f'"{first.json["id"]}-1"'
    assert etag_of(first) != etag_of(second)  # equal versions, different items
    assert etag_of(alice.get(f"/contacts/{first.json['id']}")) == etag_of(first)
    note = alice.post(f"/contacts/{first.json['id']}/notes", {"body": "hello"})
    assert etag_of(note) == f'"{note.json["id"]}-1"'
    assert etag_of(alice.get(f"/notes/{note.json['id']}")) == etag_of(note)


def test_an_unchanged_contact_answers_304_and_a_changed_one_200(alice: Api, contact: dict[str, Any]) -> None:
    path = f"/contacts/{contact['id']}"
    held = etag_of(alice.get(path))
    not_modified(revalidated(alice, path, held), held)
    not_modified(revalidated(alice, path, f'"other", {held}'), held)  # any of a list
    not_modified(revalidated(alice, path, f"W/{held}"), held)  # weak comparison (RFC 9110 §13.1.2)
    not_modified(revalidated(alice, path, "*"), held)

    changed = alice.patch(path, {"title": "Countess"})
    assert changed.status == 200
    fresh = revalidated(alice, path, held)
    assert fresh.status == 200
    assert fresh.json == changed.json
    assert etag_of(fresh) == etag_of(changed) == f'"{contact["id"]}-2"'
    not_modified(revalidated(alice, path, etag_of(fresh)), etag_of(fresh))


def test_a_note_revalidates_like_a_contact(alice: Api, contact: dict[str, Any]) -> None:
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "first"})
    path = f"/notes/{note.json['id']}"
    held = etag_of(note)
    not_modified(revalidated(alice, path, held), held)
    alice.put(path, {"body": "second"})
    fresh = revalidated(alice, path, held)
    assert (fresh.status, fresh.json["body"], etag_of(fresh)) == (200, "second", f'"{note.json["id"]}-2"')


def test_another_items_etag_or_garbage_gives_the_full_answer(alice: Api, contact: dict[str, Any]) -> None:
    other = alice.post("/contacts", {"first_name": "Other"})
    path = f"/contacts/{contact['id']}"
    for header in (etag_of(other), "garbage", '"1"', ""):
        reply = revalidated(alice, path, header)
        assert reply.status == 200, header
        assert reply.json == contact


def test_a_missing_or_anothers_item_is_404_even_with_star(alice: Api, bob: Api, contact: dict[str, Any]) -> None:
    problem(revalidated(alice, f"/contacts/{MISSING_ID}", "*"), 404)
    path = f"/contacts/{contact['id']}"
    problem(revalidated(bob, path, etag_of(alice.get(path))), 404)  # a 304 would say that it exists
    problem(revalidated(bob, path, "*"), 404)


# ---- lists, search, exports ------------------------------------------------------------


def test_a_list_page_has_a_weak_etag_and_answers_304_until_it_changes(alice: Api, contact: dict[str, Any]) -> None:
    page = alice.get("/contacts")
    held = etag_of(page)
    assert held.startswith('W/"')
    not_modified(revalidated(alice, "/contacts", held), held)
    not_modified(revalidated(alice, "/contacts", held.removeprefix("W/")), held)

    alice.patch(f"/contacts/{contact['id']}", {"title": "Countess"})  # a changed item
    changed = revalidated(alice, "/contacts", held)
    assert changed.status == 200 and changed.json["items"][0]["title"] == "Countess"
    assert etag_of(changed) != held
    alice.post("/contacts", {"first_name": "Grace"})  # a new item
    grown = revalidated(alice, "/contacts", etag_of(changed))
    assert grown.status == 200 and len(grown.json["items"]) == 2
    not_modified(revalidated(alice, "/contacts", etag_of(grown)), etag_of(grown))


def test_a_contacts_notes_revalidate(alice: Api, contact: dict[str, Any]) -> None:
    path = f"/contacts/{contact['id']}/notes"
    alice.post(path, {"body": "one"})
    held = etag_of(alice.get(path))
    not_modified(revalidated(alice, path, held), held)
    alice.post(path, {"body": "two"})
    assert revalidated(alice, path, held).status == 200


def test_each_user_has_their_own_list_etag(alice: Api, bob: Api, contact: dict[str, Any]) -> None:
    held = etag_of(alice.get("/contacts"))
    reply = revalidated(bob, "/contacts", held)
    assert reply.status == 200 and reply.json["items"] == []


def test_search_answers_304_until_an_item_changes(alice: Api, chalice_client: Client, contact: dict[str, Any]) -> None:
    index_now(chalice_client)
    path = "/search?q=ada"
    page = alice.get(path)
    assert [item["id"] for item in page.json["items"]] == [contact["id"]]
    held = etag_of(page)
    assert held.startswith('W/"')
    not_modified(revalidated(alice, path, held), held)

    alice.patch(f"/contacts/{contact['id']}", {"company": "Analytical Engines"})
    index_now(chalice_client)
    changed = revalidated(alice, path, held)
    assert changed.status == 200 and changed.json["items"][0]["contact"]["company"] == "Analytical Engines"
    not_modified(revalidated(alice, path, etag_of(changed)), etag_of(changed))


def test_an_export_page_revalidates(alice: Api, contact: dict[str, Any]) -> None:
    path = "/exports?format=csv"
    held = etag_of(alice.get(path))
    not_modified(revalidated(alice, path, held), held)
    assert etag_of(alice.get("/exports?format=json")) != held  # another representation
    alice.patch(f"/contacts/{contact['id']}", {"title": "Countess"})
    assert revalidated(alice, path, held).status == 200


def test_a_304_costs_the_read_it_answers_for(alice: Api, contact: dict[str, Any], dynamodb: CallCounter) -> None:
    path = f"/contacts/{contact['id']}"
    held = etag_of(alice.get(path))
    dynamodb.reset()
    assert revalidated(alice, path, held).status == 304
    assert dynamodb.by_operation() == {"GetItem": 1}


# ---- If-Match --------------------------------------------------------------------------


def test_if_match_takes_the_new_etag_and_refuses_another_items(alice: Api, contact: dict[str, Any]) -> None:
    path = f"/contacts/{contact['id']}"
    other = alice.post("/contacts", {"first_name": "Other"})
    problem(alice.patch(path, {"title": "X"}, headers={"If-Match": etag_of(other)}), 412)
    problem(alice.delete(path, headers={"If-Match": etag_of(other)}), 412)
    assert alice.get(path).json == contact  # nothing written
    held = etag_of(alice.get(path))
    changed = alice.patch(path, {"title": "Countess"}, headers={"If-Match": held})
    assert changed.status == 200 and etag_of(changed) == f'"{contact["id"]}-2"'
    problem(alice.put(path, {"first_name": "Ada"}, headers={"If-Match": held}), 412)  # stale
    assert alice.delete(path, headers={"If-Match": etag_of(changed)}).status == 204


def test_a_bare_version_is_still_accepted_for_one_release(alice: Api, contact: dict[str, Any]) -> None:
    path = f"/contacts/{contact['id']}"
    assert alice.patch(path, {"title": "A"}, headers={"If-Match": '"1"'}).status == 200
    assert alice.patch(path, {"title": "B"}, headers={"If-Match": "2"}).status == 200
    assert alice.patch(path, {"title": "C"}, headers={"If-Match": 'W/"3"'}).status == 200
    problem(alice.patch(path, {"title": "D"}, headers={"If-Match": '"3"'}), 412)
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "x"}).json
    problem(alice.delete(f"/notes/{note['id']}", headers={"If-Match": f'"{contact["id"]}-1"'}), 412)
    assert alice.delete(f"/notes/{note['id']}", headers={"If-Match": '"1"'}).status == 204


@pytest.mark.parametrize("value", ['"01M8FP1CYTGFW5FGC7TXSJ3ETH-"', '"01M8FP1CYTGFW5FGC7TXSJ3ETH-x"', '"abc-1"'])
def test_a_malformed_item_etag_in_if_match_is_400(alice: Api, contact: dict[str, Any], value: str) -> None:
    problem(alice.patch(f"/contacts/{contact['id']}", {"title": "X"}, headers={"If-Match": value}), 400)


# ---- caching headers -------------------------------------------------------------------


def test_authenticated_reads_may_be_kept_but_must_be_revalidated(alice: Api, contact: dict[str, Any]) -> None:
    for path in ("/contacts", f"/contacts/{contact['id']}", "/auth/me", "/workspaces"):
        reply = alice.get(path)
        assert reply.status == 200, path
        assert reply.header("cache-control") == "private, no-cache", path
        assert reply.header("vary") == "Authorization", path
        assert reply.header("etag"), path


def test_tokens_writes_errors_and_public_reads_are_not_stored(alice: Api, contact: dict[str, Any]) -> None:
    answers = {
        "token": alice.login(alice.user["username"]),
        "write": alice.patch(f"/contacts/{contact['id']}", {"title": "X"}),
        "create": alice.post("/contacts", {"first_name": "Y"}),
        "missing": alice.get(f"/contacts/{MISSING_ID}"),
        "health": alice.get("/health", auth=False),
    }
    for name, reply in answers.items():
        assert reply.header("cache-control") == "no-store", name
        assert "Authorization" not in (reply.header("vary") or ""), name
    assert answers["write"].header("etag") == f'"{contact["id"]}-2"'  # writes keep their ETag


def test_vary_names_origin_too_when_cors_is_on(alice: Api, limits: Any, contact: dict[str, Any]) -> None:
    limits(cors_allowed_origins=APP)
    path = f"/contacts/{contact['id']}"
    reply = alice.get(path, headers={"Origin": APP})
    assert sorted(name.strip() for name in (reply.header("vary") or "").split(",")) == ["Authorization", "Origin"]
    held = etag_of(reply)
    unchanged = alice.get(path, headers={"Origin": APP, "If-None-Match": held})
    not_modified(unchanged, held)
    assert unchanged.header("access-control-allow-origin") == APP
    assert "ETag" in (unchanged.header("access-control-expose-headers") or "")


# ---- through make run's server ---------------------------------------------------------


def test_make_run_sends_a_304_without_body_or_content_type(shared_stack: Stack) -> None:
    headers = signed_in(shared_stack.base, "conditional-stack")
    api = shared_stack.base + "/api/v1"
    created = requests.post(api + "/contacts", json={"first_name": "Ada"}, headers=headers, timeout=10)
    path = f"/contacts/{created.json()['id']}"
    for url in (api + path, api + "/contacts"):
        tag = requests.get(url, headers=headers, timeout=10).headers["ETag"]
        unchanged = requests.get(url, headers={**headers, "If-None-Match": tag}, timeout=10)
        assert unchanged.status_code == 304, url
        assert unchanged.content == b""
        assert "Content-Type" not in unchanged.headers and "Content-Length" not in unchanged.headers
        assert unchanged.headers["ETag"] == tag
        assert unchanged.headers["Cache-Control"] == "private, no-cache"


def test_another_items_etag_on_a_path_that_cannot_be_an_item_is_a_404_not_a_412(alice: Api) -> None:
    """As without the header: no item has that id, so there is nothing for If-Match to hold."""
    etag = '"01M8FP1CYTGFW5FGC7TXSJ3ETH-2"'
    for path in ("/notes/not-an-id", "/contacts/not-an-id"):
        assert alice.delete(path, headers={"if-match": etag}).status == 404
