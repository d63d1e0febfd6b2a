"""POST /imports: the rules every format shares (JSON export here; the file formats in test_import_files)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, CallCounter
from tests.workspaces import acting_in, add, new_workspace

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def backup(*contacts: dict[str, Any]) -> bytes:
    return json.dumps({"format": "contact-notes", "version": 1, "contacts": list(contacts)}).encode()


def person(first: str, email: str | None = None, *notes: str, **fields: Any) -> dict[str, Any]:
    return {"first_name": first, "email": email, **fields, "notes": [{"original_body": n} for n in notes]}


def import_json(api: Api, body: bytes, query: str = "") -> Any:
    return api.request("POST", f"/imports?format=json{query}", raw=body, headers={"content-type": "application/json"})


def contacts(api: Api) -> list[dict[str, Any]]:
    found, cursor = [], ""
    while True:
        page = api.get(f"/contacts?limit=100{cursor}").json
        found += page["items"]
        if not page["next_cursor"]:
            return found
        cursor = f"&cursor={page['next_cursor']}"


def by_email(api: Api) -> dict[str, dict[str, Any]]:
    return {c["email"]: c for c in contacts(api) if c["email"]}


def notes_of(api: Api, contact_id: str) -> list[str]:
    return [n["original_body"] for n in reversed(api.get(f"/contacts/{contact_id}/notes").json["items"])]


def test_an_import_creates_contacts_and_their_notes(alice: Api) -> None:
    reply = import_json(
        alice,
        backup(
            person("Ann", "ann@example.com", "Met at the fair #lead", "Called back", last_name="Lee", title="CTO"),
            person("Bo", None, phone="+1 415 555 0100", company="Acme"),
        ),
    )
    assert reply.status == 200, reply.body
    assert reply.json == {
        "created": 2,
        "updated": 0,
        "skipped": 0,
        "failed": 0,
        "notes_created": 2,
        "errors": [],
        "dry_run": False,
    }
    stored = {c["first_name"]: c for c in contacts(alice)}
    assert stored["Ann"]["last_name"] == "Lee" and stored["Ann"]["title"] == "CTO"
    assert stored["Bo"]["phone_e164"] == "+14155550100" and stored["Bo"]["company"] == "Acme"
    assert notes_of(alice, stored["Ann"]["id"]) == ["Met at the fair #lead", "Called back"]
    assert notes_of(alice, stored["Bo"]["id"]) == []


def test_bad_rows_are_reported_and_the_others_go_in(alice: Api) -> None:
    reply = import_json(
        alice,
        backup(
            person("Good", "good@example.com"),
            person("Bad", "not-an-email"),
            person("", "noname@example.com"),
            person("Long", None, "x" * 100_001),
            "not an object",  # type: ignore[arg-type]
            person("Also good", None),
        ),
    )
    assert reply.status == 200, reply.body
    report = reply.json
    assert (report["created"], report["failed"]) == (2, 4)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (2, "email"),
        (3, "first_name"),
        (4, "notes"),
        (5, None),
    ]
    assert sorted(c["first_name"] for c in contacts(alice)) == ["Also good", "Good"]


def test_an_email_already_in_the_workspace_or_earlier_in_the_file_is_skipped(alice: Api) -> None:
    assert alice.post("/contacts", {"first_name": "Old", "email": "Taken@Example.com"}).status == 201
    reply = import_json(
        alice,
        backup(
            person("New", "taken@example.COM", "a note that is not added"),
            person("First", "dup@example.com"),
            person("Second", "DUP@example.com"),
            person("Plain", None),
        ),
    )
    assert reply.json | {"errors": None} == {
        "created": 2, "updated": 0, "skipped": 2, "failed": 0, "notes_created": 0, "errors": None, "dry_run": False
    }  # fmt: skip
    stored = by_email(alice)
    assert stored["Taken@example.com"]["first_name"] == "Old"
    assert stored["dup@example.com"]["first_name"] == "First"
    assert notes_of(alice, stored["Taken@example.com"]["id"]) == []


def test_on_conflict_update_fills_in_the_contact_and_adds_the_notes(alice: Api) -> None:
    old = alice.post("/contacts", {"first_name": "Old", "email": "taken@example.com", "company": "Kept"}).json
    reply = import_json(
        alice,
        backup(
            person("Renamed", "TAKEN@example.com", "first note", title="CEO"),
            person("Again", "taken@example.com", "second note"),
            person("One", "one@example.com", phone="123"),
            person("Two", "ONE@example.com", "for one", company="Made"),
        ),
        "&on_conflict=update",
    )
    assert reply.json | {"errors": None} == {
        "created": 1, "updated": 3, "skipped": 0, "failed": 0, "notes_created": 3, "errors": None, "dry_run": False
    }  # fmt: skip
    stored = by_email(alice)
    updated = alice.get(f"/contacts/{old['id']}").json
    assert (updated["first_name"], updated["company"], updated["title"]) == ("Again", "Kept", "CEO")
    assert updated["version"] == 2
    assert notes_of(alice, old["id"]) == ["first note", "second note"]
    one = stored["ONE@example.com"]
    assert (one["first_name"], one["phone"], one["company"]) == ("Two", "123", "Made")
    assert notes_of(alice, one["id"]) == ["for one"]


def test_a_dry_run_answers_the_real_report_and_writes_nothing(alice: Api, dynamodb: CallCounter) -> None:
    alice.post("/contacts", {"first_name": "Old", "email": "taken@example.com"})
    body = backup(person("A", "a@example.com", "n1"), person("B", "taken@example.com"), person("C", "bad@"))
    dynamodb.reset()
    dry = import_json(alice, body, "&dry_run=true")
    assert not WRITES & set(dynamodb.calls), dynamodb.calls
    assert len(contacts(alice)) == 1
    real = import_json(alice, body)
    assert dry.json == real.json | {"dry_run": True}
    assert (real.json["created"], real.json["skipped"], real.json["failed"], real.json["notes_created"]) == (1, 1, 1, 1)


def test_one_hundred_rows_with_an_email_and_a_note_each_take_at_most_six_write_calls(
    alice: Api, dynamodb: CallCounter
) -> None:
    rows = [person(f"P{i}", f"p{i}@example.com", f"note {i}") for i in range(100)]
    dynamodb.reset()
    reply = import_json(alice, backup(*rows))
    assert reply.json["created"] == 100 and reply.json["notes_created"] == 100
    writes = [call for call in dynamodb.calls if call in WRITES]
    assert len(writes) <= 6, dynamodb.by_operation()
    assert dynamodb.by_operation().get("BatchGetItem") == 1


def test_imports_into_a_shared_workspace_check_it_and_need_an_editor(alice: Api, bob: Api) -> None:
    workspace = new_workspace(alice, "Team")
    add(alice, workspace, "bob", "viewer")
    viewer = acting_in(bob, workspace)
    assert import_json(viewer, backup(person("X"))).status == 403
    editor = acting_in(alice, workspace)
    assert import_json(editor, backup(person("In team", "t@example.com"))).json["created"] == 1
    assert [c["first_name"] for c in contacts(editor)] == ["In team"]
    assert contacts(alice) == []  # not the personal workspace


@pytest.mark.parametrize(
    ("content_type", "query", "status"),
    [
        ("image/png", "", 415),
        ("", "", 415),
        ("text/plain", "?format=json", 200),
        ("application/octet-stream", "?format=json", 200),
        ("application/json", "?format=csv", 415),  # the body says JSON, the query CSV
        ("application/json", "?format=xml", 422),
        ("application/json", "?on_conflict=replace", 422),
        ("application/json", "?dry_run=maybe", 422),
        ("text/csv", '?mapping={"shoe_size":"Size"}', 422),
        ("text/csv", "?mapping=[1]", 422),
    ],
)
def test_media_types_and_parameters(alice: Api, content_type: str, query: str, status: int) -> None:
    reply = alice.request("POST", f"/imports{query}", raw=backup(person("A")), headers={"content-type": content_type})
    assert reply.status == status, reply.body
    if status != 200:
        assert reply.header("content-type") == "application/problem+json"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"format": "contact-notes", "version": 2, "contacts": []}',
        b'{"format": "hubspot"}',
        b'{"format": "contact-notes", "version": 1, "contacts": {}}',
        b"\xff\xfe\x00\x00",
        b'{"format": "contact-notes", "version": 1, "contacts": [' * 20,
    ],
)
def test_a_body_that_is_not_our_export_is_a_400(alice: Api, body: bytes) -> None:
    reply = import_json(alice, body)
    assert reply.status == 400, reply.body
    assert "export" in reply.json["detail"] or "JSON" in reply.json["detail"]


def test_too_many_rows_or_bytes_is_a_413_saying_to_split(alice: Api, dynamodb: CallCounter) -> None:
    rows = backup(*[{"first_name": "A"}] * 10_001)
    reply = import_json(alice, rows)
    assert reply.status == 413 and "Split" in reply.json["detail"]
    big = backup(person("A", None, "x" * 60_000)) + b" " * (5 * 1024 * 1024)
    reply = import_json(alice, big)
    assert reply.status == 413 and "Split" in reply.json["detail"]
    assert contacts(alice) == []


def test_a_row_whose_email_is_claimed_while_the_import_runs_is_reported(alice: Api, dynamodb: CallCounter) -> None:
    """Between the import's read of the claims and its transaction, another request takes an
    email: that row alone is reported; the rest of the transaction is sent again and goes in."""
    from tests.conftest import before_first

    def claim_it() -> None:
        assert alice.post("/contacts", {"first_name": "Quick", "email": "race@example.com"}).status == 201

    with before_first("TransactWriteItems", claim_it):
        reply = import_json(alice, backup(person("A", "a@example.com"), person("Slow", "race@example.com", "n")))
    assert reply.json["created"] == 1 and reply.json["failed"] == 1
    assert reply.json["errors"] == [{"row": 2, "field": "email", "detail": reply.json["errors"][0]["detail"]}]
    assert "while the import ran" in reply.json["errors"][0]["detail"]
    assert sorted(by_email(alice)) == ["a@example.com", "race@example.com"]
    assert by_email(alice)["race@example.com"]["first_name"] == "Quick"


def test_rows_of_a_transaction_dynamodb_keeps_refusing_are_reported_and_the_rest_go_in(
    alice: Api, dynamodb: CallCounter
) -> None:
    """Rows whose email is P0..P74 fill one transaction (50 rows, 100 actions) and a half; the
    transaction holding P0 is throttled every time: its 50 rows are reported, nothing else lost."""
    from tests.conftest import answering, dynamodb_error

    def throttle_p0(request: dict[str, Any]) -> Any:
        if '"p0@example.com"' in json.dumps(request):
            return dynamodb_error("ThrottlingException", "Rate of requests exceeds the allowed throughput.")
        return None

    rows = [person(f"P{i}", f"p{i}@example.com") for i in range(75)]
    with answering("TransactWriteItems", throttle_p0):
        report = import_json(alice, backup(*rows)).json
    assert (report["created"], report["failed"]) == (25, 50)
    assert [e["row"] for e in report["errors"]] == list(range(1, 51))
    assert all("import it again" in e["detail"] for e in report["errors"])
    assert sorted(by_email(alice)) == sorted(f"p{i}@example.com" for i in range(50, 75))
    again = import_json(alice, backup(*rows)).json  # the same file again: the missing rows go in
    assert (again["created"], again["skipped"], again["failed"]) == (50, 25, 0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Vera Card\r\nEND:VCARD\r\n", "Vera"),
        ("\ufeffBEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ute Sixteen\r\nEND:VCARD\r\n".encode("utf-16-le"), "Ute"),
        (backup(person("Jason")), "Jason"),
        (b"First Name,Last Name\r\nCarla,Comma\r\n", "Carla"),
    ],
)
def test_a_file_sent_as_octet_stream_without_a_format_is_read_by_its_first_bytes(
    alice: Api, body: bytes, expected: str
) -> None:
    reply = alice.request("POST", "/imports", raw=body, headers={"content-type": "application/octet-stream"})
    assert reply.json["created"] == 1, reply.body
    assert [c["first_name"] for c in contacts(alice)] == [expected]


def test_no_transaction_starts_once_the_store_time_is_spent(alice: Api, limits: Any) -> None:
    """BULK_STORE_SECONDS=0: the deadline has passed before the first transaction, so every row is
    reported (to import again) and the answer comes at once; nothing is half written."""
    limits(bulk_store_seconds=0)
    report = import_json(alice, backup(person("A", "a@example.com", "n"), person("B"))).json
    assert (report["created"], report["failed"], report["notes_created"]) == (0, 2, 0)
    assert all("import it again" in e["detail"] for e in report["errors"])
    assert contacts(alice) == []


def test_a_row_with_more_notes_than_one_transaction_holds_reports_the_notes_that_did_not_go_in(
    alice: Api, dynamodb: CallCounter
) -> None:
    """60 notes: the contact and 48 go in the row's transaction, 12 in a follow-up one, which
    DynamoDB keeps refusing here: the contact is in, and the row says how many notes are not."""
    from tests.conftest import answering, dynamodb_error

    def refuse_follow_up(request: dict[str, Any]) -> Any:
        if any("Update" in item for item in request["TransactItems"]):
            return dynamodb_error("ThrottlingException", "Rate of requests exceeds the allowed throughput.")
        return None

    with answering("TransactWriteItems", refuse_follow_up):
        report = import_json(alice, backup(person("Many", "many@example.com", *[f"n{i}" for i in range(60)]))).json
    assert (report["created"], report["notes_created"], report["failed"]) == (1, 48, 1)
    assert report["errors"][0]["field"] == "notes" and "12 were not added" in report["errors"][0]["detail"]
    (many,) = contacts(alice)
    assert len(alice.get(f"/contacts/{many['id']}/notes?limit=100").json["items"]) == 48


def test_follow_up_notes_are_not_sent_when_the_row_itself_failed(alice: Api, dynamodb: CallCounter) -> None:
    """on_conflict=update merges 50 rows of one email (50 notes: more than one transaction). The
    contact's email changes before the import writes: the row fails, and none of its notes go in."""
    from tests.conftest import before_first

    old = alice.post("/contacts", {"first_name": "Old", "email": "x@example.com"}).json

    def move() -> None:
        assert alice.patch(f"/contacts/{old['id']}", {"email": "moved@example.com"}).status == 200

    rows = [person(f"R{i}", "x@example.com", f"note {i}") for i in range(50)]
    with before_first("TransactWriteItems", move):
        report = import_json(alice, backup(*rows), "&on_conflict=update").json
    assert (report["updated"], report["failed"], report["notes_created"]) == (0, 50, 0)
    assert alice.get(f"/contacts/{old['id']}/notes").json["items"] == []


def test_an_update_to_a_phone_that_does_not_parse_drops_the_old_e164_form(alice: Api) -> None:
    old = alice.post("/contacts", {"first_name": "Old", "email": "p@example.com", "phone": "+1 415 555 0100"}).json
    assert old["phone_e164"] == "+14155550100"
    import_json(alice, backup(person("Old", "p@example.com", phone="12")), "&on_conflict=update")
    updated = alice.get(f"/contacts/{old['id']}").json
    assert (updated["phone"], updated["phone_e164"]) == ("12", None)
