"""Search (#14) through HTTP: what a query finds, in which order, page by page, in whose
workspace, at what cost, and what it refuses. The index is brought up to date by delivering
the streams to the indexer Lambdas (tests.search.index_now) after the writes, as the event
source mappings would a moment later."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pytest
from chalice.test import Client

from chalicelib import runtime
from chalicelib.models import dynamodb_client
from tests.conftest import Api, CallCounter, problem
from tests.search import index_now
from tests.workspaces import acting_in, add, new_workspace


def contact(api: Api, first_name: str, **fields: Any) -> dict[str, Any]:
    reply = api.post("/contacts", {"first_name": first_name, **fields})
    assert reply.status == 201, reply.body
    return dict(reply.json)


def note(api: Api, contact_id: str, body: str) -> dict[str, Any]:
    reply = api.post(f"/contacts/{contact_id}/notes", {"body": body})
    assert reply.status == 201, reply.body
    return dict(reply.json)


def search(api: Api, q: str, **params: Any) -> dict[str, Any]:
    reply = api.get(search_path(q, **params))
    assert reply.status == 200, reply.body
    return dict(reply.json)


def search_path(q: str, **params: Any) -> str:
    query = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in {"q": q, **params}.items())
    return f"/search?{query}"


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


@pytest.fixture
def indexed(chalice_client: Client) -> Any:
    """Bring the index up to date (what the streams do within seconds)."""
    return lambda: index_now(chalice_client)


# ---- what a term matches -----------------------------------------------------------------


def test_case_and_accents_are_folded_and_terms_match_word_starts(alice: Api, indexed: Any) -> None:
    jose = contact(alice, "José", last_name="Müller-Łukasiewicz")
    john = contact(alice, "John")
    indexed()
    for q in ("jose", "JOSÉ", "mull", "müller", "lukas", "łukasiewicz", "jose lukas"):
        assert ids(search(alice, q)) == [jose["id"]], q
    assert set(ids(search(alice, "jo"))) == {jose["id"], john["id"]}
    assert ids(search(alice, "joh")) == [john["id"]]
    assert ids(search(alice, "ukas")) == []  # the start of a word, not any part of it


def test_the_search_item_is_the_item_the_item_routes_return(alice: Api, indexed: Any) -> None:
    made = contact(alice, "Ada", last_name="Lovelace", company="Analytical Engines")
    written = note(alice, made["id"], "Talked about the engine with Ada")
    indexed()
    page = search(alice, "ada")
    by_type = {item["type"]: item for item in page["items"]}
    assert by_type["contact"]["contact"] == alice.get(f"/contacts/{made['id']}").json
    assert by_type["contact"]["matched"] == ["first_name"]
    assert by_type["note"]["note"] == alice.get(f"/notes/{written['id']}").json
    assert by_type["note"]["contact_id"] == made["id"] == by_type["note"]["note"]["contact_id"]
    assert by_type["note"]["matched"] == ["body"]
    assert "note" not in by_type["contact"] and "contact" not in by_type["note"]
    assert page["next_cursor"] is None


def test_digits_match_a_phone_whatever_its_formatting(alice: Api, indexed: Any) -> None:
    phoned = contact(alice, "Phoned", phone="+1 (555) 123-4567")
    contact(alice, "Other", phone="+1 (212) 555-0100")
    indexed()
    for q in ("5551234", "555", "(555)123-4567", "+15551234567", "555-123", "15551234"):
        assert ids(search(alice, q))[:1] == [phoned["id"]], q
    found = search(alice, "5551234")
    assert ids(found) == [phoned["id"]] and found["items"][0]["matched"] == ["phone"]
    assert ids(search(alice, "5559")) == []


def test_an_email_or_its_domain_matches(alice: Api, indexed: Any) -> None:
    john = contact(alice, "John", email="john@example.com")
    jane = contact(alice, "Jane", email="jane.doe@example.com")
    contact(alice, "Max", email="max@elsewhere.org")
    indexed()
    assert ids(search(alice, "john@exa")) == [john["id"]]
    assert set(ids(search(alice, "example.com"))) == {john["id"], jane["id"]}
    assert ids(search(alice, "jane.doe@example.com")) == [jane["id"]]
    assert ids(search(alice, "doe")) == [jane["id"]]
    assert search(alice, "john@exa")["items"][0]["matched"] == ["email"]


def test_a_tag_matches_exactly(alice: Api, indexed: Any) -> None:
    person = contact(alice, "Tagged")
    fair = note(alice, person["id"], "Met at the #fair in May")
    note(alice, person["id"], "See you at the #fairground")
    indexed()
    found = search(alice, "#fair")
    assert ids(found) == [fair["id"]] and found["items"][0]["matched"] == ["tags"]
    assert ids(search(alice, "#FAIR")) == [fair["id"]]
    assert ids(search(alice, "#fai")) == []


def test_every_term_is_required(alice: Api, indexed: Any) -> None:
    both = contact(alice, "Maria", last_name="Garcia")
    contact(alice, "Maria", last_name="Lopez")
    contact(alice, "Pedro", last_name="Garcia")
    indexed()
    assert ids(search(alice, "maria garcia")) == [both["id"]]
    assert ids(search(alice, "garcia maria")) == [both["id"]]
    assert ids(search(alice, "maria nobody")) == []


def test_a_query_of_punctuation_only_matches_nothing(alice: Api, indexed: Any, dynamodb: CallCounter) -> None:
    contact(alice, "Someone")
    indexed()
    dynamodb.reset()
    assert search(alice, "- #") == {"items": [], "next_cursor": None}
    assert dynamodb.calls == []


# ---- order -------------------------------------------------------------------------------


def test_whole_words_rank_above_prefixes_and_names_above_email_company_and_notes(alice: Api, indexed: Any) -> None:
    in_note = contact(alice, "Someone")
    body = note(alice, in_note["id"], "Orion called about the launch")
    company = contact(alice, "Worker", company="Orion Labs")
    email = contact(alice, "Mailer", email="orion@example.com")
    prefix = contact(alice, "Orionis")
    older = contact(alice, "Orion", last_name="Older")
    newer = contact(alice, "Orion", last_name="Newer")
    indexed()
    page = search(alice, "orion")
    assert ids(page) == [newer["id"], older["id"], email["id"], company["id"], body["id"], prefix["id"]]
    scores = [item["score"] for item in page["items"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == scores[1]
    assert [item["matched"] for item in page["items"]][2:] == [["email"], ["company"], ["body"], ["first_name"]]
    assert search(alice, "orion") == page  # the same query, the same order


def test_a_score_sums_the_terms(alice: Api, indexed: Any) -> None:
    both_names = contact(alice, "Kim", last_name="Park", company="Kim Park Ltd")
    one_name = contact(alice, "Kim", company="Park Lane")
    indexed()
    page = search(alice, "kim park")
    assert ids(page) == [both_names["id"], one_name["id"]]
    assert page["items"][0]["score"] > page["items"][1]["score"]
    assert page["items"][0]["matched"] == ["first_name", "last_name", "company"]


# ---- pages -------------------------------------------------------------------------------


def test_pages_follow_the_ranking_without_gaps_or_repeats(alice: Api, indexed: Any) -> None:
    made = [contact(alice, f"Pager{i}", company="Pager Inc")["id"] for i in range(12)]
    made += [contact(alice, "Pager")["id"] for _ in range(13)]
    indexed()
    whole = search(alice, "pager", limit=100)
    assert whole["next_cursor"] is None and sorted(ids(whole)) == sorted(made)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = search(alice, "pager", limit=10, **({"cursor": cursor} if cursor else {}))
        seen += ids(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == ids(whole)
    assert ids(search(alice, "pager", limit=1)) == ids(whole)[:1]
    assert ids(search(alice, "nothing matches this")) == []


def test_a_cursor_only_continues_its_own_query_in_its_own_workspace(alice: Api, bob: Api, indexed: Any) -> None:
    for i in range(3):
        contact(alice, f"Cursor{i}", company="Cursors")
        contact(bob, f"Cursor{i}", company="Cursors")
    indexed()
    cursor = search(alice, "cursors", limit=1)["next_cursor"]
    assert cursor
    assert search(alice, "CURSORS", limit=1, cursor=cursor)["items"]  # folded: the same query
    for q, params in (("cursor", {}), ("cursors", {"type": "contact"}), ("cursors cursors", {})):
        problem(alice.get(search_path(q, cursor=cursor, **params)), 400)
    problem(bob.get(search_path("cursors", cursor=cursor)), 400)
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    problem(alice.get(search_path("cursors", cursor=tampered)), 400)
    listed = alice.get("/contacts?limit=1").json["next_cursor"]
    problem(alice.get(search_path("cursors", cursor=listed)), 400)
    problem(alice.get(search_path("cursors", cursor="not-a-cursor")), 400)


# ---- kinds, workspaces, changes ----------------------------------------------------------


def test_type_keeps_one_kind(alice: Api, indexed: Any) -> None:
    person = contact(alice, "Vega")
    written = note(alice, person["id"], "Vega owes me a call")
    indexed()
    assert [item["type"] for item in search(alice, "vega")["items"]] == ["contact", "note"]
    assert ids(search(alice, "vega", type="contact")) == [person["id"]]
    notes = search(alice, "vega", type="note")
    assert ids(notes) == [written["id"]] and notes["items"][0]["contact_id"] == person["id"]


def test_only_the_tokens_workspace_is_searched(alice: Api, bob: Api, indexed: Any) -> None:
    mine = contact(alice, "Quill")
    bobs = contact(bob, "Quill")
    team = new_workspace(alice, "Team")
    add(alice, team, "bob", "viewer")
    in_team = contact(acting_in(alice, team), "Quill", company="Team")
    indexed()
    assert ids(search(alice, "quill")) == [mine["id"]]
    assert ids(search(bob, "quill")) == [bobs["id"]]
    as_viewer = search(acting_in(bob, team), "quill")  # a viewer may search
    assert ids(as_viewer) == [in_team["id"]]
    assert ids(search(acting_in(alice, team), "quill")) == [in_team["id"]]


def test_a_search_needs_a_token(anon: Api) -> None:
    assert anon.get(search_path("anything")).status == 401


def test_a_renamed_contact_stops_matching_its_old_name_at_once(alice: Api, indexed: Any) -> None:
    person = contact(alice, "Oldname")
    indexed()
    assert ids(search(alice, "oldname")) == [person["id"]]
    assert alice.patch(f"/contacts/{person['id']}", {"first_name": "Newname"}).status == 200
    # The index has not seen the rename yet: the old name's posting is still there, and the
    # item, read as it is now, no longer holds the word, so it is not shown.
    assert search(alice, "oldname")["items"] == []
    indexed()
    assert search(alice, "oldname")["items"] == []
    found = search(alice, "newname")
    assert ids(found) == [person["id"]] and found["items"][0]["contact"]["first_name"] == "Newname"


def test_deleted_items_leave_the_results(alice: Api, indexed: Any) -> None:
    person = contact(alice, "Gone")
    kept = contact(alice, "Gone", last_name="Kept")
    written = note(alice, kept["id"], "gone fishing")
    indexed()
    assert len(search(alice, "gone")["items"]) == 3
    assert alice.delete(f"/contacts/{person['id']}").status == 204
    assert alice.delete(f"/notes/{written['id']}").status == 204
    assert ids(search(alice, "gone")) == [kept["id"]]  # before the index hears of it
    indexed()
    assert ids(search(alice, "gone")) == [kept["id"]]


def test_an_edited_note_is_found_by_its_new_text(alice: Api, indexed: Any) -> None:
    person = contact(alice, "Writer")
    written = note(alice, person["id"], "first draft about turnips")
    indexed()
    assert alice.put(f"/notes/{written['id']}", {"body": "second draft about parsnips"}).status == 200
    indexed()
    assert search(alice, "turnips")["items"] == []
    assert ids(search(alice, "parsnips")) == [written["id"]]


# ---- what is refused ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/search",
        "/search?q=",
        "/search?q=%20%20%20",
        "/search?q=%09%0A",
        "/search?q=" + "a" * 201,
        "/search?q=" + "+".join("abcdefghi"),
        "/search?q=a&limit=0",
        "/search?q=a&limit=101",
        "/search?q=a&limit=abc",
        "/search?q=a&type=bogus",
    ],
)
def test_bad_queries_are_422_problems(alice: Api, path: str) -> None:
    body = problem(alice.get(path), 422)
    assert body["errors"][0]["pointer"].startswith("#/query/")


def test_the_longest_and_widest_queries_are_searched(alice: Api) -> None:
    assert search(alice, "  " + "a" * 200 + "  ")["items"] == []  # 200 once trimmed
    assert search(alice, " ".join("abcdefgh"))["items"] == []  # 8 terms


def test_the_published_pattern_for_q_is_what_the_server_refuses(alice: Api) -> None:
    """The OpenAPI document's pattern for q and the server agree (a client can check first)."""
    document = alice.client.http.get("/openapi.json").json_body
    q = next(p for p in document["paths"]["/api/v1/search"]["get"]["parameters"] if p["name"] == "q")
    pattern = re.compile(q["schema"]["pattern"])
    samples = ["a", " a ", "\u3000a\u3000", "a\x1cb", "a\u200bb", "-", "#", "\t", "", " " * 3, "a " * 8, "a " * 9]
    samples += ["x" * 200, "x" * 201, " " * 50 + "x" * 200 + " " * 50, "x" * 199 + " y", "é" * 200]
    for sample in samples:
        status = alice.get(search_path(sample)).status
        assert status == (200 if pattern.search(sample) else 422), repr(sample)


# ---- cost ----------------------------------------------------------------------------------


def test_a_search_is_one_query_per_term_and_one_batch_get(alice: Api, indexed: Any, dynamodb: CallCounter) -> None:
    for i in range(30):
        person = contact(alice, f"Cost{i}", last_name="Counted", company="Budget Corp")
        note(alice, person["id"], f"Cost review number {i} for budget")
    indexed()
    for q, terms in (("cost", 1), ("cost counted budget", 3), ("cost cost", 1)):
        dynamodb.reset()
        assert len(search(alice, q)["items"]) == 20
        assert dynamodb.by_operation() == {"Query": terms, "BatchGetItem": 1}, q
        assert dynamodb.limiter_calls == ["UpdateItem"]
        assert len(dynamodb.log) <= terms + 2
    dynamodb.reset()
    assert search(alice, "nomatch cost counted")["items"] == []
    assert dynamodb.by_operation() == {"Query": 1}  # nothing holds the first term: no more calls


def test_a_search_starts_no_call_once_its_store_time_is_spent(
    alice: Api, indexed: Any, dynamodb: CallCounter, limits: Any
) -> None:
    """With every call at its slowest an 8-term search would outlast the Lambda; past
    SEARCH_STORE_SECONDS it answers 503 instead of starting another call (0 here: any
    call after the first is past it)."""
    contact(alice, "Slow", last_name="Store")
    indexed()
    limits(search_store_seconds=0)
    for q, queries in (("slow store", 1), ("slow", 1)):
        dynamodb.reset()
        reply = alice.get(search_path(q))
        assert problem(reply, 503)["type"] == "urn:contact-notes:problem:service-unavailable"
        assert reply.header("retry-after") == "1"
        assert dynamodb.by_operation() == {"Query": queries}, q  # neither the second term nor the page


@contextmanager
def batch_get_leaving(unread: set[str]) -> Iterator[None]:
    """DynamoDB's answer to BatchGetItem, with these contacts left in UnprocessedKeys (as it
    does when throttled or past 16 MB), at the SDK boundary."""

    def hook(parsed: dict[str, Any], **_: Any) -> None:
        table = runtime.settings().contacts_table
        found = parsed["Responses"].get(table, [])
        left = [item for item in found if item["contact_id"]["S"] in unread]
        parsed["Responses"][table] = [item for item in found if item not in left]
        keys = [{"owner_id": item["owner_id"], "contact_id": item["contact_id"]} for item in left]
        parsed["UnprocessedKeys"] = {table: {"Keys": keys}} if keys else {}

    events = dynamodb_client().meta.events
    events.register("after-call.dynamodb.BatchGetItem", hook)
    try:
        yield
    finally:
        events.unregister("after-call.dynamodb.BatchGetItem", hook)


def test_a_page_ends_before_the_first_item_dynamodb_left_unread(alice: Api, indexed: Any) -> None:
    oldest, middle, newest = (contact(alice, "Partial")["id"] for _ in range(3))
    indexed()
    with batch_get_leaving({middle}):
        first = search(alice, "partial")
    assert ids(first) == [newest] and first["next_cursor"]  # the rest were not skipped ...
    rest = search(alice, "partial", cursor=first["next_cursor"])
    assert ids(rest) == [middle, oldest] and rest["next_cursor"] is None  # ... but come next
    with batch_get_leaving({newest, middle, oldest}):
        reply = alice.get(search_path("partial"))
    assert problem(reply, 503)["type"] == "urn:contact-notes:problem:service-unavailable"
    assert reply.header("retry-after") == "1"


def test_digits_of_any_script_find_a_phone(alice: Api, chalice_client: Client) -> None:
    """Arabic-Indic and fullwidth digits (a phone keyboard, a Japanese IME) are digits too."""
    contact = alice.post("/contacts", {"first_name": "Dial", "phone": "+1 (555) 123-4567"}).json
    index_now(chalice_client)
    for q in ("٥٥٥", "５５５１２３４", "(٥٥٥)"):
        reply = alice.get(f"/search?q={quote(q)}")
        assert reply.status == 200, (q, reply.body)
        assert [item["id"] for item in reply.json["items"]] == [contact["id"]], q


def test_a_tag_typed_decomposed_finds_the_tag_stored_composed(alice: Api, chalice_client: Client) -> None:
    contact = alice.post("/contacts", {"first_name": "Tagged"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "Lunch #café"}).json
    index_now(chalice_client)
    decomposed = unicodedata.normalize("NFD", "#Café")
    assert [item["id"] for item in alice.get(f"/search?q={quote(decomposed)}").json["items"]] == [note["id"]]
