"""The search index's stream consumers (index_contacts, index_notes) through client.lambda_.invoke.

Changes are made through the HTTP API, and reach the index either as moto's own stream
records (tests.search.index_now, the normalizer included) or as records built from the
stored items (tests.streams.record) when a test needs to deliver them in a given order,
twice, or with a fault at the SDK boundary. What is asserted is what the search table
holds afterwards, read in full.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from chalice.test import Client

from chalicelib import runtime
from chalicelib.models import Workspace, dynamodb_client
from chalicelib.search import keys
from tests.conftest import Api, dynamodb_error, unprocessed
from tests.conftest import answering as any_answering
from tests.search import index_now
from tests.streams import record, stored, stored_contact
from tests.workspaces import acting_in, new_workspace, removal

JOSE = {"first_name": "José", "last_name": "Müller", "company": "Acme"}


# ---- reading the index -----------------------------------------------------------------------


def index_items() -> list[dict[str, Any]]:
    """The whole search table, read with a client of its own: the app's client counts calls
    and fails a test on any Scan, and a test must see every item stored, not only the
    buckets it thinks to look in."""
    client = boto3.client("dynamodb", region_name=runtime.settings().aws_region)
    deserialize = TypeDeserializer().deserialize
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=runtime.settings().search_table, ConsistentRead=True):
        found += [{name: deserialize(value) for name, value in item.items()} for item in page["Items"]]
    return found


def postings(workspace_id: str, item_id: str) -> dict[str, str]:
    """{word: field codes} of one item's postings; each must sit in its workspace's bucket for its word."""
    found: dict[str, str] = {}
    for item in index_items():
        if item["bucket"].endswith("#" + keys.DOC):
            continue
        word, _, posted_for = keys.parse_posting_key(item["key"])
        if posted_for == item_id:
            assert item["bucket"] == keys.posting_bucket(workspace_id, word), item
            found[word] = item["fields"]
    return found


def document(workspace_id: str, kind: str, item_id: str) -> dict[str, Any] | None:
    wanted = (keys.doc_bucket(workspace_id), keys.doc_key(kind, item_id))
    return next((item for item in index_items() if (item["bucket"], item["key"]) == wanted), None)


@contextmanager
def search_calls() -> Iterator[list[str]]:
    """The operations sent to the search table while the block runs, in order (the bench's
    CallCounter names no table for a BatchWriteItem)."""
    table = runtime.settings().search_table
    sent: list[str] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        if table in (params.get("TableName"), *params.get("RequestItems", {})):
            sent.append(model.name)

    events = dynamodb_client().meta.events
    events.register("before-parameter-build.dynamodb", hook)
    try:
        yield sent
    finally:
        events.unregister("before-parameter-build.dynamodb", hook)


# ---- delivering records ------------------------------------------------------------------------


def invoke(client: Client, function: str, *records: dict[str, Any]) -> list[str]:
    """Run one indexer; return the sequence numbers it reported as failed."""
    result = client.lambda_.invoke(function, {"Records": list(records)}).payload
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


@contextmanager
def batch_requests() -> Iterator[list[list[tuple[str, str]]]]:
    """Each BatchWriteItem sent, as its requests: ("put" | "delete", word), in order."""
    sent: list[list[tuple[str, str]]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        requests = next(iter(params["RequestItems"].values()))
        sent.append(
            [
                ("put", keys.parse_posting_key(r["PutRequest"]["Item"]["key"]["S"])[0])
                if "PutRequest" in r
                else ("delete", keys.parse_posting_key(r["DeleteRequest"]["Key"]["key"]["S"])[0])
                for r in requests
            ]
        )

    events = dynamodb_client().meta.events
    events.register("before-parameter-build.dynamodb.BatchWriteItem", hook)
    try:
        yield sent
    finally:
        events.unregister("before-parameter-build.dynamodb.BatchWriteItem", hook)


def answering(operation: str, answer: Callable[[dict[str, Any]], Any]) -> Any:
    """conftest.answering, on the search table."""
    return any_answering(operation, answer, runtime.settings().search_table)


# ---- what is indexed ---------------------------------------------------------------------------


def test_a_contact_is_indexed_under_every_field(alice: Api, chalice_client: Client) -> None:
    contact = alice.post(
        "/contacts",
        {
            "first_name": "José",
            "last_name": "Müller-Łukasiewicz",
            "email": "jose.mueller@Example.com",
            "phone": "+1 (212) 555-0123",
            "company": "Acme Corp",
            "title": "Head of Sales",
        },
    ).json
    index_now(chalice_client)
    assert postings(alice.user["id"], contact["id"]) == {
        "jose": "fe",  # the first name, and a word of the email's local part
        "muller": "l",
        "lukasiewicz": "l",
        "jose.mueller@example.com": "e",  # the address whole
        "example.com": "e",  # its domain
        "mueller": "e",
        "12125550123": "p",  # the digits as typed (and in E.164)
        "2125550123": "p",  # the national number
        "acme": "c",
        "corp": "c",
        "head": "t",
        "of": "t",
        "sales": "t",
    }
    created = {item["created"] for item in index_items() if "created" in item}
    assert created == {contact["created_at"]}  # what orders results newest first
    doc = document(alice.user["id"], "contact", contact["id"])
    assert doc is not None and doc["version"] == 1 and "deleted" not in doc


def test_a_pending_note_is_skipped_and_its_normalized_text_and_tags_indexed(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", {"first_name": "Ada"}).json
    messy = "Met  José at the  #Fair\n\n\n\nBring #Samples"
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": messy}).json
    with search_calls() as calls:
        assert invoke(chalice_client, "index_notes", record("INSERT", new=stored(owner, note["id"]))) == []
    assert calls == []  # pending: not even the document is read
    assert postings(owner, note["id"]) == {} and document(owner, "note", note["id"]) is None

    index_now(chalice_client)  # the normalizer's write-back, then its record to the index
    assert postings(owner, note["id"]) == {
        **dict.fromkeys(("met", "jose", "at", "the", "fair", "bring", "samples"), "b"),
        "#fair": "g",
        "#samples": "g",
    }
    assert document(owner, "note", note["id"])["version"] == 2  # type: ignore[index]  # the normalized version


def test_a_notes_first_2000_distinct_words_are_indexed(alice: Api, chalice_client: Client) -> None:
    contact = alice.post("/contacts", {"first_name": "Long"}).json
    text = "w0 w1 w0 " + " ".join(f"w{i}" for i in range(2100)) + " #late"
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": text}).json
    index_now(chalice_client)
    indexed = postings(alice.user["id"], note["id"])
    # Repeats count once; "late" is past the cap as a word, but a tag is always indexed.
    assert indexed == {**{f"w{i}": "b" for i in range(2000)}, "#late": "g"}


def test_a_note_of_long_words_in_any_script_and_huge_tags_is_indexed_within_dynamodbs_limits(
    alice: Api, chalice_client: Client
) -> None:
    """A note's document lists its words in one item (400 KB at most) and a posting's key is
    at most 1,024 bytes: words that fold to four times their bytes ("㍿" -> "株式会社") stop at
    MAX_NOTE_WORD_BYTES,
    a 1,100-character tag is cut to 64 characters, and only the first 100 tags count."""
    from chalicelib.search.text import MAX_NOTE_TAGS, MAX_NOTE_WORD_BYTES, MAX_WORD_CHARS

    owner = alice.user["id"]
    contact = alice.post("/contacts", {"first_name": "Wide"}).json
    wide = " ".join("㍿" * 15 + chr(0x4E00 + i) for i in range(2000))  # 96 KB stored, 366 KB folded
    tags = " ".join(f"#t{i}" for i in range(150))
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": f"{wide} #{'a' * 1100} {tags}"}).json
    index_now(chalice_client)  # asserts that no record failed
    indexed = postings(owner, note["id"])
    body_words = [word for word, codes in indexed.items() if codes == "b"]
    assert 1000 < len(body_words) < 2000 and sum(len(w.encode()) + 8 for w in body_words) <= MAX_NOTE_WORD_BYTES
    assert "#" + "a" * MAX_WORD_CHARS in indexed
    assert len([word for word, codes in indexed.items() if codes == "g"]) == MAX_NOTE_TAGS
    assert len(document(owner, "note", note["id"])["words"].encode()) < 400_000  # type: ignore[index]
    found = alice.get("/search?q=%23" + "a" * 150).json["items"]  # a longer tag typed: cut alike
    assert [item["id"] for item in found] == [note["id"]]


def test_an_update_writes_only_the_difference(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", JOSE).json
    index_now(chalice_client)
    assert alice.patch(f"/contacts/{contact['id']}", {"first_name": "Pedro"}).status == 200
    with search_calls() as calls, batch_requests() as sent:
        index_now(chalice_client)
    assert calls == ["GetItem", "BatchWriteItem", "PutItem"]
    assert sent == [[("put", "pedro"), ("delete", "jose")]]  # "muller" and "acme" are not sent again
    assert postings(owner, contact["id"]) == {"pedro": "f", "muller": "l", "acme": "c"}

    # An edit that folds to the same words writes no posting: only the document's version.
    assert alice.patch(f"/contacts/{contact['id']}", {"last_name": "MÜLLER"}).status == 200
    with search_calls() as calls, batch_requests() as sent:
        index_now(chalice_client)
    assert calls == ["GetItem", "PutItem"] and sent == []
    assert document(owner, "contact", contact["id"])["version"] == 3  # type: ignore[index]


def test_a_word_moving_between_fields_is_written_again(alice: Api, chalice_client: Client) -> None:
    """Same word, other fields: its posting's codes change (what the field weights score)."""
    contact = alice.post("/contacts", {"first_name": "Acme", "company": "Acme"}).json
    index_now(chalice_client)
    assert postings(alice.user["id"], contact["id"]) == {"acme": "fc"}
    alice.patch(f"/contacts/{contact['id']}", {"first_name": "Ann"})
    index_now(chalice_client)
    assert postings(alice.user["id"], contact["id"]) == {"ann": "f", "acme": "c"}


def test_deleting_removes_every_posting_and_leaves_a_tombstone(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", {**JOSE, "email": "jose@example.com"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "Lunch #fair"}).json
    index_now(chalice_client)
    assert postings(owner, contact["id"]) and postings(owner, note["id"])

    assert alice.delete(f"/contacts/{contact['id']}").status == 204  # its notes go with it
    index_now(chalice_client)
    assert [item for item in index_items() if not item["bucket"].endswith("#" + keys.DOC)] == []
    now = datetime.now(UTC)
    for kind, item_id, version in (("contact", contact["id"], 1), ("note", note["id"], 2)):
        tombstone = document(owner, kind, item_id)
        assert tombstone is not None
        assert tombstone["deleted"] is True and tombstone["version"] == version
        assert "words" not in tombstone
        # Kept past the streams' 24-hour retention, so no replay can outlive it; then TTL ends it.
        expires = datetime.fromtimestamp(int(tombstone["expires_at"]), UTC)
        assert now + timedelta(days=1) < expires <= now + timedelta(days=3)


# ---- order, replays and tombstones -------------------------------------------------------------


def test_a_replayed_or_older_record_changes_nothing(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", JOSE).json
    first = stored_contact(owner, contact["id"])
    alice.patch(f"/contacts/{contact['id']}", {"first_name": "Pedro"})
    inserted = record("INSERT", new=first)
    renamed = record("MODIFY", new=stored_contact(owner, contact["id"]), old=first)
    assert invoke(chalice_client, "index_contacts", inserted, renamed) == []
    indexed = index_items()
    assert postings(owner, contact["id"])["pedro"] == "f"

    # The same batch again (a retry after a timeout), then the insert alone, after the rename.
    with search_calls() as calls:
        assert invoke(chalice_client, "index_contacts", copy.deepcopy(inserted), copy.deepcopy(renamed)) == []
        assert invoke(chalice_client, "index_contacts", copy.deepcopy(inserted)) == []
    assert calls == ["GetItem"] * 3  # each record: its document read, nothing written
    assert index_items() == indexed


def test_a_replayed_insert_after_the_remove_does_not_resurrect(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", JOSE).json
    item = stored_contact(owner, contact["id"])
    assert alice.delete(f"/contacts/{contact['id']}").status == 204
    inserted, removed = record("INSERT", new=item), record("REMOVE", old=item)
    assert invoke(chalice_client, "index_contacts", inserted, removed) == []
    assert postings(owner, contact["id"]) == {}
    # Replayed after the removal: same version, but the removal came after the insert.
    assert invoke(chalice_client, "index_contacts", copy.deepcopy(inserted)) == []
    assert postings(owner, contact["id"]) == {}
    assert document(owner, "contact", contact["id"])["deleted"] is True  # type: ignore[index]


def test_a_late_record_of_a_removed_note_does_not_resurrect_it(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", {"first_name": "Ada"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "Gone soon #fair"}).json
    index_now(chalice_client)
    processed = stored(owner, note["id"])
    assert alice.delete(f"/notes/{note['id']}").status == 204
    index_now(chalice_client)
    # The normalizer's write-back record, delivered again after the removal.
    assert invoke(chalice_client, "index_notes", record("MODIFY", new=processed, old=processed)) == []
    assert postings(owner, note["id"]) == {}


# ---- workspaces --------------------------------------------------------------------------------


def test_each_workspace_has_its_own_buckets(alice: Api, bob: Api, chalice_client: Client) -> None:
    team = new_workspace(alice)
    inside = acting_in(alice, team)
    mine = alice.post("/contacts", JOSE).json
    bobs = bob.post("/contacts", JOSE).json
    teams = inside.post("/contacts", JOSE).json
    index_now(chalice_client)
    # The same words, each under its own workspace's buckets (postings() checks the bucket).
    for workspace_id, contact in ((alice.user["id"], mine), (bob.user["id"], bobs), (team, teams)):
        assert postings(workspace_id, contact["id"]) == {"jose": "f", "muller": "l", "acme": "c"}
    buckets = {item["bucket"] for item in index_items() if item["key"].startswith("jose|")}
    assert buckets == {f"{alice.user['id']}#j", f"{bob.user['id']}#j", f"{team}#j"}

    assert alice.delete(f"/contacts/{mine['id']}").status == 204
    index_now(chalice_client)
    assert postings(alice.user["id"], mine["id"]) == {}
    assert postings(bob.user["id"], bobs["id"]) != {} and postings(team, teams["id"]) != {}


def test_a_deleted_workspaces_sweep_cleans_its_index(alice: Api, chalice_client: Client) -> None:
    team = new_workspace(alice)
    inside = acting_in(alice, team)
    contacts = [inside.post("/contacts", {"first_name": f"Member{i}", "company": "Doomed"}).json for i in range(3)]
    note = inside.post(f"/contacts/{contacts[0]['id']}/notes", {"body": "Last words #fair"}).json
    mine = alice.post("/contacts", {"first_name": "Kept", "company": "Doomed"}).json
    index_now(chalice_client)
    workspace = Workspace.get(team, consistent_read=True)
    assert alice.delete(f"/workspaces/{team}").status == 204
    sweep = chalice_client.lambda_.invoke("purge_workspaces", {"Records": [removal(workspace)]}).payload
    assert sweep == {"batchItemFailures": []}

    index_now(chalice_client)  # the swept contacts' and notes' REMOVE records
    left = [item for item in index_items() if item["bucket"].startswith(team + "#")]
    assert left and all(item["bucket"] == keys.doc_bucket(team) and item["deleted"] for item in left)
    assert len(left) == 4  # a tombstone per swept contact and note
    assert postings(team, note["id"]) == {}
    assert postings(alice.user["id"], mine["id"]) == {"kept": "f", "doomed": "c"}  # another workspace's


# ---- failures ----------------------------------------------------------------------------------


def test_a_failing_record_is_reported_alone_and_its_retry_completes(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    made = [alice.post("/contacts", {"first_name": name}).json for name in ("Anna", "Bruno", "Clara")]
    records = [record("INSERT", new=stored_contact(owner, contact["id"])) for contact in made]
    bruno = made[1]["id"]

    def refuse_brunos(request: dict[str, Any]) -> Any:
        if bruno in json.dumps(request):
            return dynamodb_error("ProvisionedThroughputExceededException", "slow down")
        return None

    with answering("BatchWriteItem", refuse_brunos):
        failed = invoke(chalice_client, "index_contacts", *records)
    assert failed == [records[1]["dynamodb"]["SequenceNumber"]]
    assert postings(owner, made[0]["id"]) == {"anna": "f"} and postings(owner, made[2]["id"]) == {"clara": "f"}
    assert postings(owner, bruno) == {} and document(owner, "contact", bruno) is None

    # The mapping's retry: from the failed record on (the one after it again too, harmlessly).
    assert invoke(chalice_client, "index_contacts", *copy.deepcopy(records[1:])) == []
    assert postings(owner, bruno) == {"bruno": "f"}
    assert document(owner, "contact", bruno)["version"] == 1  # type: ignore[index]


def test_a_document_that_cannot_be_written_fails_the_record_and_the_retry_finishes(
    alice: Api, chalice_client: Client
) -> None:
    """The document is written last: when its PutItem fails, the record fails, and the retry
    (reading the old document) writes the difference again and then the document."""
    owner = alice.user["id"]
    contact = alice.post("/contacts", JOSE).json
    delivery = record("INSERT", new=stored_contact(owner, contact["id"]))
    with answering("PutItem", lambda _: dynamodb_error("InternalServerError", "try again")):
        assert invoke(chalice_client, "index_contacts", delivery) == [delivery["dynamodb"]["SequenceNumber"]]
    assert document(owner, "contact", contact["id"]) is None
    assert invoke(chalice_client, "index_contacts", copy.deepcopy(delivery)) == []
    assert postings(owner, contact["id"]) == {"jose": "f", "muller": "l", "acme": "c"}
    assert document(owner, "contact", contact["id"])["version"] == 1  # type: ignore[index]


def _note_of_60_words(alice: Api, chalice_client: Client) -> dict[str, Any]:
    """A note of 60 distinct words on a contact already indexed."""
    contact = alice.post("/contacts", {"first_name": "Wordy"}).json
    index_now(chalice_client)
    body = " ".join(f"word{i}" for i in range(60))
    return alice.post(f"/contacts/{contact['id']}/notes", {"body": body}).json  # type: ignore[no-any-return]


def test_postings_go_25_to_a_call(alice: Api, chalice_client: Client) -> None:
    note = _note_of_60_words(alice, chalice_client)
    with search_calls() as calls, batch_requests() as sent:
        index_now(chalice_client)
    assert [len(call) for call in sent] == [25, 25, 10]
    # The note's first transaction marks its contact (has_notes) without a new version: that
    # record costs one GetItem and is skipped. Then the note's: 60 postings in 3 calls.
    assert calls == ["GetItem", "GetItem", "BatchWriteItem", "BatchWriteItem", "BatchWriteItem", "PutItem"]
    assert len(postings(alice.user["id"], note["id"])) == 60


def testunprocessed_postings_are_sent_again(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    note = _note_of_60_words(alice, chalice_client)
    throttled = [2]  # twice nothing processed, then DynamoDB catches up

    def throttling(request: dict[str, Any]) -> Any:
        if throttled[0]:
            throttled[0] -= 1
            return unprocessed(request)
        return None

    with search_calls() as calls, answering("BatchWriteItem", throttling):
        index_now(chalice_client)
    assert calls.count("BatchWriteItem") == 3 + 2  # 3 chunks, the first sent 3 times
    assert len(postings(owner, note["id"])) == 60
    assert document(owner, "note", note["id"])["version"] == 2  # type: ignore[index]


def test_postings_leftunprocessed_fail_the_record_and_the_retry_finishes(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", JOSE).json
    delivery = record("INSERT", new=stored_contact(owner, contact["id"]))
    with search_calls() as calls, answering("BatchWriteItem", unprocessed):
        assert invoke(chalice_client, "index_contacts", delivery) == [delivery["dynamodb"]["SequenceNumber"]]
    assert calls == ["GetItem"] + ["BatchWriteItem"] * 6  # sent, then resent 5 times
    assert document(owner, "contact", contact["id"]) is None  # nothing claimed done
    assert invoke(chalice_client, "index_contacts", copy.deepcopy(delivery)) == []
    assert postings(owner, contact["id"]) == {"jose": "f", "muller": "l", "acme": "c"}


def test_a_later_record_of_an_item_whose_record_failed_waits_for_the_retry(alice: Api, chalice_client: Client) -> None:
    """A rename whose postings were written but whose document was not, then the removal, in
    one batch: the removal must not run against the old document (it would leave the new
    name's posting behind for ever); it fails with the rename, and the retry runs both in order."""
    owner = alice.user["id"]
    contact = alice.post("/contacts", JOSE).json
    first = stored_contact(owner, contact["id"])
    assert invoke(chalice_client, "index_contacts", record("INSERT", new=first)) == []
    alice.patch(f"/contacts/{contact['id']}", {"first_name": "Pedro"})
    renamed_item = stored_contact(owner, contact["id"])
    assert alice.delete(f"/contacts/{contact['id']}").status == 204
    renamed = record("MODIFY", new=renamed_item, old=first)
    removed = record("REMOVE", old=renamed_item)
    other = alice.post("/contacts", {"first_name": "Olga"}).json
    unrelated = record("INSERT", new=stored_contact(owner, other["id"]))
    failures = [1]

    def fail_once(_: dict[str, Any]) -> Any:
        if failures[0]:
            failures[0] -= 1
            return dynamodb_error("InternalServerError", "try again")
        return None

    with answering("PutItem", fail_once):
        failed = invoke(chalice_client, "index_contacts", renamed, removed, unrelated)
    assert failed == [renamed["dynamodb"]["SequenceNumber"], removed["dynamodb"]["SequenceNumber"]]
    assert postings(owner, other["id"]) == {"olga": "f"}  # another item's record is not held up

    assert invoke(chalice_client, "index_contacts", *copy.deepcopy([renamed, removed, unrelated])) == []
    assert postings(owner, contact["id"]) == {}
    assert document(owner, "contact", contact["id"])["deleted"] is True  # type: ignore[index]
