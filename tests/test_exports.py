"""GET /exports (#15): pages of contacts as the JSON backup, CSV and vCard, through HTTP."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.transfer.exports import BODY_LIMIT_BYTES
from tests.conftest import Api, CallCounter, Reply, problem
from tests.workspaces import acting_in, add, new_workspace

HEADER = "id,first_name,last_name,email,phone,company,title,created_at,updated_at"
CONTACT_FIELDS = ("id", "first_name", "last_name", "email", "phone", "phone_e164", "company", "title",
                  "created_at", "updated_at", "version")  # fmt: skip
MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8; header=present",
    "vcard": "text/vcard; charset=utf-8",
}
FILENAMES = {"json": "contacts.json", "csv": "contacts.csv", "vcard": "contacts.vcf"}
TRICKY = {
    "first_name": 'Zoë "Z"',
    "last_name": "Ñúñez, Jr.; III",
    "email": "zoe@example.com",
    "phone": "+44 20 7946 0958",
    "company": "Acme, Inc; \\ Ltd.",
    "title": "=SUM(A1:A2) 日本語 🎉",
}


def made(api: Api, count: int, prefix: str = "C") -> list[dict[str, Any]]:
    """`count` contacts, newest first (as every list and export shows them)."""
    contacts = []
    for i in range(count):
        reply = api.post("/contacts", {"first_name": f"{prefix}{i}"})
        assert reply.status == 201, reply.body
        contacts.append(reply.json)
    return contacts[::-1]


def export(api: Api, fmt: str | None = None, cursor: str | None = None) -> Reply:
    query = "&".join(f"{k}={v}" for k, v in (("format", fmt), ("cursor", cursor)) if v is not None)
    return api.get("/exports" + (f"?{query}" if query else ""))


def next_link(reply: Reply) -> str | None:
    """The next page's URL from the Link header (RFC 8288), or None."""
    link = reply.header("link")
    if link is None:
        return None
    found = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert found, link
    return found.group(1)


def pages(api: Api, fmt: str) -> list[Reply]:
    """Every page of an export, following the Link header as a client would."""
    replies = [export(api, fmt)]
    while (url := next_link(replies[-1])) is not None:
        assert url.startswith("/api/v1/exports?"), url
        replies.append(api.get(url.removeprefix("/api/v1")))
        assert len(replies) < 50, "the export never ends"
    for reply in replies:
        assert reply.status == 200, reply.body
        assert reply.header("content-type") == MEDIA[fmt]
        assert reply.header("content-disposition") == f'attachment; filename="{FILENAMES[fmt]}"'
    return replies


def csv_rows(reply: Reply) -> list[dict[str, str]]:
    text = reply.body.decode("utf-8")
    assert not text.startswith("\ufeff"), "no byte order mark"
    assert text.startswith(HEADER + "\r\n"), text[:200]
    return list(csv.DictReader(io.StringIO(text, newline="")))


def cards(reply: Reply) -> list[Any]:
    import vobject

    return list(vobject.readComponents(reply.body.decode("utf-8")))


# ---- the JSON backup ---------------------------------------------------------------------


def test_json_is_the_default_with_every_field_and_each_contacts_notes_oldest_first(alice: Api) -> None:
    first = alice.post("/contacts", TRICKY).json
    second = alice.post("/contacts", {"first_name": "Solo"}).json
    notes = [alice.post(f"/contacts/{first['id']}/notes", {"body": f"Line one\nline {i} #tag"}).json for i in range(3)]
    reply = export(alice)
    assert reply.status == 200
    assert reply.header("content-type") == "application/json"
    assert reply.header("content-disposition") == 'attachment; filename="contacts.json"'
    assert reply.header("link") is None
    document = reply.json
    assert list(document) == ["format", "version", "contacts", "next_cursor"]
    assert (document["format"], document["version"], document["next_cursor"]) == ("contact-notes", 1, None)
    listed = alice.get("/contacts").json["items"]
    assert [{k: c[k] for k in CONTACT_FIELDS} for c in document["contacts"]] == listed  # newest first
    assert [c["id"] for c in document["contacts"]] == [second["id"], first["id"]]
    assert document["contacts"][0]["notes"] == []
    assert document["contacts"][1]["notes"] == notes  # oldest first, every field
    assert "日本語 🎉" in reply.body.decode("utf-8")  # UTF-8, not \u escapes


def test_an_empty_workspace_exports_an_empty_page(alice: Api) -> None:
    for fmt in MEDIA:
        reply = pages(alice, fmt)[0]
        assert reply.header("link") is None
    assert export(alice, "json").json == {"format": "contact-notes", "version": 1, "contacts": [], "next_cursor": None}
    assert export(alice, "csv").body == (HEADER + "\r\n").encode()
    assert export(alice, "vcard").body == b""


def test_notes_of_a_deleted_contact_are_not_exported(alice: Api) -> None:
    """Between contacts of the page: the range read skips notes whose contact is gone."""
    older, gone, newer = (alice.post("/contacts", {"first_name": n}).json for n in ("Older", "Gone", "Newer"))
    for contact in (older, gone, newer):
        alice.post(f"/contacts/{contact['id']}/notes", {"body": f"about {contact['first_name']}"})
    assert alice.delete(f"/contacts/{gone['id']}").status == 204
    exported = export(alice).json["contacts"]
    assert [c["first_name"] for c in exported] == ["Newer", "Older"]
    assert [[n["body"] for n in c["notes"]] for c in exported] == [["about Newer"], ["about Older"]]


# ---- CSV -----------------------------------------------------------------------------------


def test_csv_is_rfc_4180_utf8_with_values_unaltered(alice: Api) -> None:
    contact = alice.post("/contacts", TRICKY).json
    plain = alice.post("/contacts", {"first_name": "Plain"}).json
    reply = pages(alice, "csv")[0]
    text = reply.body.decode("utf-8")
    assert text.count("\r\n") == 3 and "\n" not in text.replace("\r\n", "")  # CRLF line ends only
    assert '"Zoë ""Z"""' in text and '"Ñúñez, Jr.; III"' in text  # quoted as needed
    rows = csv_rows(reply)
    assert rows[0] == {**dict.fromkeys(HEADER.split(","), ""), **{k: plain[k] for k in ("id", "first_name",
                       "created_at", "updated_at")}}  # fmt: skip
    assert rows[1] == {name: contact[name] for name in HEADER.split(",")}  # the formula is left as it is


def test_contact_fields_cannot_hold_line_breaks(alice: Api) -> None:
    """So no CSV or vCard value ever spans lines: a contact's fields are single lines."""
    body = problem(alice.post("/contacts", {"first_name": "Two\nlines"}), 422)
    assert body["errors"][0]["pointer"] == "#/first_name"


# ---- vCard ---------------------------------------------------------------------------------


def test_vcard_30_parses_back_with_every_field(alice: Api) -> None:
    contact = alice.post("/contacts", TRICKY).json
    bare = alice.post("/contacts", {"first_name": "Bare"}).json
    reply = pages(alice, "vcard")[0]
    text = reply.body.decode("utf-8")
    assert text.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\n")
    assert "\\, Jr.\\; III" in text and "Acme\\, Inc\\; \\\\ Ltd." in text  # RFC 2426 escapes
    assert "EMAIL;TYPE=INTERNET:zoe@example.com" in text
    newest, full = cards(reply)
    assert newest.version.value == "3.0"
    assert (newest.uid.value, newest.fn.value, newest.n.value.given) == (bare["id"], "Bare", "Bare")
    assert not hasattr(newest, "email") and not hasattr(newest, "org")
    assert full.uid.value == contact["id"]
    assert full.fn.value == f"{TRICKY['first_name']} {TRICKY['last_name']}"
    assert (full.n.value.given, full.n.value.family) == (TRICKY["first_name"], TRICKY["last_name"])
    assert full.email.value == TRICKY["email"] and full.email.params["TYPE"] == ["INTERNET"]
    assert full.tel.value == TRICKY["phone"]
    assert full.org.value == [TRICKY["company"]]
    assert full.title.value == TRICKY["title"]
    assert full.rev.value == contact["updated_at"]


def test_vcard_folds_long_lines_between_characters(alice: Api) -> None:
    """Lines over 75 octets are folded (RFC 2425), never inside a UTF-8 character, and read back whole."""
    long = {"first_name": "Ü" * 100, "company": "日本語🎉,;" * 33, "title": "\\a" * 100}
    created = alice.post("/contacts", long)
    assert created.status == 201, created.body
    contact = created.json
    reply = export(alice, "vcard")
    lines = reply.body.split(b"\r\n")
    assert max(len(line) for line in lines) <= 75
    assert all(line.decode("utf-8") for line in lines[:-1])  # each line whole UTF-8
    (card,) = cards(reply)
    assert (card.fn.value, card.n.value.given, card.n.value.family) == (long["first_name"], long["first_name"], "")
    assert card.org.value == [long["company"]]
    assert card.title.value == long["title"]
    assert card.uid.value == contact["id"]


# ---- pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(MEDIA))
def test_pages_follow_the_link_until_the_last_which_has_none(alice: Api, limits: Any, fmt: str) -> None:
    limits(export_page_size=3)
    contacts = made(alice, 7)
    replies = pages(alice, fmt)
    assert len(replies) == 3 and next_link(replies[-1]) is None
    if fmt == "csv":
        ids = [[row["id"] for row in csv_rows(reply)] for reply in replies]  # each page with its header
    elif fmt == "vcard":
        ids = [[card.uid.value for card in cards(reply)] for reply in replies]
    else:
        ids = [[c["id"] for c in reply.json["contacts"]] for reply in replies]
        links = [parse_qs(urlsplit(next_link(reply) or "").query) for reply in replies[:-1]]
        assert [reply.json["next_cursor"] for reply in replies] == [q["cursor"][0] for q in links] + [None]
    assert [len(page) for page in ids] == [3, 3, 1]
    assert [i for page in ids for i in page] == [c["id"] for c in contacts]


def test_a_full_page_at_the_end_has_no_link(alice: Api, limits: Any) -> None:
    limits(export_page_size=3)
    made(alice, 3)
    reply = export(alice, "csv")
    assert len(csv_rows(reply)) == 3
    assert reply.header("link") is None


def test_the_link_keeps_the_format(alice: Api, limits: Any) -> None:
    limits(export_page_size=1)
    made(alice, 2)
    link = urlsplit(next_link(export(alice, "vcard")) or "")
    assert link.path == "/api/v1/exports"
    assert parse_qs(link.query)["format"] == ["vcard"]
    assert parse_qs(urlsplit(next_link(export(alice)) or "").query)["format"] == ["json"]  # the default, named


def test_behind_an_api_gateway_stage_the_link_keeps_the_stage(alice: Api, limits: Any) -> None:
    """On the execute-api URL the path starts with the stage (/api): the next page's link must too."""
    from chalice.local import LambdaContext

    from app import app

    limits(export_page_size=1)
    made(alice, 2)
    owner = alice.user["id"]
    event = {
        "resource": "/api/v1/exports", "path": "/api/v1/exports", "httpMethod": "GET", "headers": {},
        "multiValueHeaders": {}, "queryStringParameters": {"format": "csv"},
        "multiValueQueryStringParameters": {"format": ["csv"]}, "pathParameters": None, "stageVariables": None,
        "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": "/api/v1/exports", "httpMethod": "GET", "path": "/api/api/v1/exports",
                           "stage": "api", "requestId": "r", "identity": {"sourceIp": "203.0.113.5"},
                           "authorizer": {"user_id": owner, "owner_id": owner, "role": "owner"}},
    }  # fmt: skip
    reply = app(event, LambdaContext("api_handler", 512))
    assert reply["statusCode"] == 200, reply["body"]
    headers = {name.lower(): value for name, value in reply["headers"].items()}
    assert headers["link"].startswith("</api/api/v1/exports?format=csv&cursor="), headers


def test_a_page_ends_before_its_body_passes_4_mb(alice: Api) -> None:
    """Two contacts whose notes make about 2.4 MB each: one page each, the first with a Link."""
    big = "€" * 100_000  # 300 kB of UTF-8, shown twice in the backup (body and original_body)
    contacts = made(alice, 2)
    for contact in contacts:
        for _ in range(4):
            assert alice.post(f"/contacts/{contact['id']}/notes", {"body": big}).status == 201
    replies = pages(alice, "json")
    assert len(replies) == 2
    assert all(len(reply.body) <= BODY_LIMIT_BYTES for reply in replies)
    assert len(replies[0].body) > 2_000_000
    exported = [reply.json["contacts"] for reply in replies]
    assert [[c["id"] for c in page] for page in exported] == [[contacts[0]["id"]], [contacts[1]["id"]]]
    assert all(len(page[0]["notes"]) == 4 and page[0]["notes"][0]["body"] == big for page in exported)


# ---- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xml", "CSV", "vcf", ""])
def test_an_unknown_format_is_422(alice: Api, fmt: str) -> None:
    body = problem(alice.get(f"/exports?format={fmt}"), 422)
    assert body["errors"][0]["pointer"] == "#/query/format"


def test_a_forged_foreign_or_other_formats_cursor_is_400(alice: Api, bob: Api, limits: Any) -> None:
    limits(export_page_size=1)
    made(alice, 2)
    made(bob, 2)
    token = parse_qs(urlsplit(next_link(export(alice, "csv")) or "").query)["cursor"][0]
    assert export(alice, "csv", token).status == 200
    problem(export(alice, "json", token), 400)  # another format's
    problem(export(bob, "csv", token), 400)  # another workspace's
    problem(export(alice, "csv", "xyz"), 400)
    problem(alice.get("/exports?format=csv&cursor="), 400)  # an empty cursor is not "no cursor"
    problem(export(alice, "csv", token[:-2] + ("BB" if token.endswith("AA") else "AA")), 400)  # edited


# ---- who sees what -------------------------------------------------------------------------


def test_a_viewer_exports_the_workspace_and_nothing_else(alice: Api, bob: Api) -> None:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "viewer")
    team = made(acting_in(alice, workspace_id), 2, prefix="Team")
    made(alice, 1, prefix="AlicePersonal")
    made(bob, 1, prefix="BobPersonal")
    viewer = acting_in(bob, workspace_id)
    for fmt in MEDIA:
        assert len(pages(viewer, fmt)) == 1
    exported = export(viewer).json["contacts"]
    assert [c["id"] for c in exported] == [c["id"] for c in team]
    assert [row["first_name"] for row in csv_rows(export(bob, "csv"))] == ["BobPersonal0"]
    assert [row["first_name"] for row in csv_rows(export(alice, "csv"))] == ["AlicePersonal0"]


# ---- DynamoDB calls ------------------------------------------------------------------------


def test_a_page_is_one_query_of_contacts_and_one_range_of_notes(alice: Api, dynamodb: CallCounter) -> None:
    contacts = made(alice, 5)
    for contact in contacts[1:4]:
        for i in range(3):
            alice.post(f"/contacts/{contact['id']}/notes", {"body": f"n{i}"})
    dynamodb.reset()
    document = export(alice, "json").json
    assert dynamodb.by_operation() == {"Query": 2}  # not one Query per contact
    assert [len(c["notes"]) for c in document["contacts"]] == [0, 3, 3, 3, 0]
    for fmt in ("csv", "vcard"):
        dynamodb.reset()
        assert export(alice, fmt).status == 200
        assert dynamodb.by_operation() == {"Query": 1}


def test_a_page_without_notes_reads_no_notes(alice: Api, dynamodb: CallCounter) -> None:
    made(alice, 3)
    dynamodb.reset()
    assert json.loads(export(alice).body)["contacts"]
    assert dynamodb.by_operation() == {"Query": 1}
