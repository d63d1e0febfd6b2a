"""Export → import into a fresh workspace → export again: the same, ids and timestamps aside (#15).

The JSON backup brings back every contact and note (notes normalized again by the stream
consumer, delivered here as Lambda would); CSV brings back the contact fields. Each page is
imported on its own (a small EXPORT_PAGE_SIZE makes several), since any page stands alone.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from chalice.test import Client

from tests.conftest import Api, Reply
from tests.search import index_now
from tests.test_exports import HEADER, export, next_link
from tests.workspaces import acting_in, new_workspace

# What differs between an original and its restored copy: made anew by the server.
IDS_AND_TIMES = {"id", "contact_id", "created_at", "updated_at", "processed_at"}
CSV_IDS_AND_TIMES = {"id", "created_at", "updated_at"}
CONTACTS = [
    {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0958",
     "company": "Analytical Engines, Ltd.", "title": "Programmer"},
    {"first_name": 'Zoë "Z"', "last_name": "Ñúñez, Jr.; III", "company": "Acme; \\ Inc", "title": "=1+1 🎉"},
    {"first_name": "Solo"},
    {"first_name": "李", "last_name": "小龍", "phone": "1234567890", "email": "Li@Example.org"},
    {"first_name": "Mary-Jane", "company": "Café, \"Le Pain\"", "title": "Head of things"},
]  # fmt: skip
NOTES = [
    ["Met at the #conference.\nTalked about engines.", "Follow up in *March* #todo"],
    ['Ünïcode, commas; and "quotes"\n\n\tindented line'],
    [],
    ["Blank lines\r\n\r\nand CRLF #Tag #tag"],
    ["One", "Two", "Three"],
]


def seeded(api: Api) -> None:
    for contact, notes in zip(CONTACTS, NOTES, strict=True):
        reply = api.post("/contacts", contact)
        assert reply.status == 201, reply.body
        for body in notes:
            assert api.post(f"/contacts/{reply.json['id']}/notes", {"body": body}).status == 201


def every_page(api: Api, fmt: str) -> list[Reply]:
    replies = [export(api, fmt)]
    while (url := next_link(replies[-1])) is not None:
        replies.append(api.get(url.removeprefix("/api/v1")))
    assert all(reply.status == 200 for reply in replies)
    return replies


def fresh_workspace(api: Api) -> Api:
    """The same user acting as owner of a new, empty workspace."""
    restored = acting_in(api, new_workspace(api, "Restored"))
    assert export(restored).json["contacts"] == []
    return restored


def without_ids_and_times(document_contacts: list[dict[str, Any]]) -> list[str]:
    """The contacts (with their notes, in order) as comparable text, in a canonical order: the
    order of an export follows the ids, which an import makes anew."""

    def strip(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k not in IDS_AND_TIMES}

    shapes = [{**strip(c), "notes": [strip(n) for n in c["notes"]]} for c in document_contacts]
    return sorted(json.dumps(shape, sort_keys=True, ensure_ascii=False) for shape in shapes)


def backup(api: Api) -> list[dict[str, Any]]:
    return [contact for reply in every_page(api, "json") for contact in reply.json["contacts"]]


def test_json_round_trip_restores_every_contact_and_note(alice: Api, chalice_client: Client, limits: Any) -> None:
    limits(export_page_size=2)
    seeded(alice)
    index_now(chalice_client)  # the notes normalized, as in a live workspace
    pages = every_page(alice, "json")
    assert len(pages) == 3
    original = [contact for page in pages for contact in page.json["contacts"]]
    assert len(original) == len(CONTACTS)
    assert all(n["processing_status"] == "processed" for c in original for n in c["notes"])
    restored = fresh_workspace(alice)
    for page in pages:
        sent = page.json
        reply = restored.post("/imports?format=json", sent)
        assert reply.status == 200, reply.body
        result = reply.json
        assert result["created"] == len(sent["contacts"]), result
        assert result["notes_created"] == sum(len(c["notes"]) for c in sent["contacts"]), result
        assert (result["failed"], result["errors"]) == (0, []), result
    index_now(chalice_client)  # the stream consumer normalizes the imported notes
    again = backup(restored)
    assert without_ids_and_times(again) == without_ids_and_times(original)
    assert {c["id"] for c in again}.isdisjoint({c["id"] for c in original})
    # Each contact's notes in the order they were written (oldest first), as before.
    by_name = {c["first_name"]: [n["original_body"] for n in c["notes"]] for c in again}
    assert by_name == {contact["first_name"]: notes for contact, notes in zip(CONTACTS, NOTES, strict=True)}


def csv_without_ids_and_times(replies: list[Reply]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for reply in replies:
        text = reply.body.decode("utf-8")
        assert text.startswith(HEADER + "\r\n")
        for row in csv.DictReader(io.StringIO(text, newline="")):
            rows.append(tuple(value for name, value in row.items() if name not in CSV_IDS_AND_TIMES))
    return sorted(rows)


def test_csv_round_trip_restores_the_contact_fields(alice: Api, limits: Any) -> None:
    limits(export_page_size=2)
    seeded(alice)
    original = every_page(alice, "csv")
    assert len(original) == 3
    restored = fresh_workspace(alice)
    for page in original:
        reply = restored.request("POST", "/imports?format=csv", raw=page.body, headers={"content-type": "text/csv"})
        assert reply.status == 200, reply.body
        assert reply.json["created"] == page.body.decode().count("\r\n") - 1, reply.json
        assert (reply.json["failed"], reply.json["errors"]) == (0, []), reply.json
    again = every_page(restored, "csv")
    assert csv_without_ids_and_times(again) == csv_without_ids_and_times(original)
    assert len(csv_without_ids_and_times(again)) == len(CONTACTS)
