"""The normalizer Lambda through client.lambda_.invoke, with stream events built from the models."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import runtime
from chalicelib.models import Note
from tests.conftest import ROOT, TEST_PASSWORD_HASH, Api, CallCounter
from tests.streams import event, record, stored

MESSY = "  Met  Ada\u00a0at #PyCon\r\n\r\n\r\n\r\nFollow up on #pycon and #Hiring\t \n"
CLEAN = "Met Ada at #PyCon\n\nFollow up on #pycon and #Hiring"


@pytest.fixture
def note(alice: Api) -> dict[str, Any]:
    contact = alice.post("/contacts", {"first_name": "Ada"}).json
    created = alice.post(f"/contacts/{contact['id']}/notes", {"body": MESSY})
    assert created.status == 201
    return created.json  # type: ignore[no-any-return]


def invoke(client: Client, *records: dict[str, Any]) -> list[str]:
    """Run the normalizer; return the sequence numbers it reported as failed."""
    result = client.lambda_.invoke("normalize_notes", event(*records)).payload
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def test_new_note_is_pending_until_processed(alice: Api, note: dict[str, Any]) -> None:
    assert note["processing_status"] == "pending"
    assert note["body"] == MESSY and note["original_body"] == MESSY
    assert note["tags"] == [] and note["processed_at"] is None and note["normalizer_version"] is None


def test_insert_is_normalized_with_one_write(
    alice: Api, note: dict[str, Any], chalice_client: Client, dynamodb: CallCounter
) -> None:
    item = stored(alice.user["id"], note["id"])
    dynamodb.reset()
    assert invoke(chalice_client, record("INSERT", new=item)) == []
    assert dynamodb.by_operation() == {"UpdateItem": 1}
    shown = alice.get(f"/notes/{note['id']}").json
    assert shown["body"] == CLEAN
    assert shown["original_body"] == MESSY
    assert shown["tags"] == ["pycon", "hiring"]
    assert shown["processing_status"] == "processed"
    assert shown["processed_at"].endswith("Z")
    assert shown["normalizer_version"] == "1"
    assert shown["failure_reason"] is None
    assert shown["version"] == 2


def test_clean_note_keeps_one_copy(alice: Api, chalice_client: Client) -> None:
    contact = alice.post("/contacts", {"first_name": "C"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "Already clean #ok"}).json
    invoke(chalice_client, record("INSERT", new=stored(alice.user["id"], note["id"])))
    item = stored(alice.user["id"], note["id"])
    assert item.original_body is None  # not stored twice when identical
    shown = alice.get(f"/notes/{note['id']}").json
    assert shown["original_body"] == shown["body"] == "Already clean #ok"
    assert shown["tags"] == ["ok"]


def test_modify_reprocesses_an_edit(alice: Api, note: dict[str, Any], chalice_client: Client) -> None:
    owner = alice.user["id"]
    invoke(chalice_client, record("INSERT", new=stored(owner, note["id"])))
    before = stored(owner, note["id"])
    edited = alice.patch(f"/notes/{note['id']}", {"body": "New  text #Edit "}).json
    assert edited["processing_status"] == "pending"
    assert edited["tags"] == [] and edited["original_body"] == "New  text #Edit "
    assert invoke(chalice_client, record("MODIFY", new=stored(owner, note["id"]), old=before)) == []
    shown = alice.get(f"/notes/{note['id']}").json
    assert shown["body"] == "New text #Edit"
    assert shown["original_body"] == "New  text #Edit "
    assert shown["tags"] == ["edit"]
    assert shown["processing_status"] == "processed"


def test_remove_does_nothing(alice: Api, note: dict[str, Any], chalice_client: Client, dynamodb: CallCounter) -> None:
    item = stored(alice.user["id"], note["id"])
    alice.delete(f"/notes/{note['id']}")
    dynamodb.reset()
    assert invoke(chalice_client, record("REMOVE", old=item)) == []
    assert dynamodb.calls == []


def test_replayed_batch_changes_nothing_twice(
    alice: Api, note: dict[str, Any], chalice_client: Client, dynamodb: CallCounter
) -> None:
    batch = [record("INSERT", new=stored(alice.user["id"], note["id"]))]
    assert invoke(chalice_client, *batch) == []
    after_first = stored(alice.user["id"], note["id"]).serialize()
    dynamodb.reset()
    assert invoke(chalice_client, *copy.deepcopy(batch)) == []
    assert dynamodb.by_operation() == {"UpdateItem": 1}  # one conditional attempt, refused: no write
    assert stored(alice.user["id"], note["id"]).serialize() == after_first


def test_older_record_never_overwrites_a_newer_edit(alice: Api, note: dict[str, Any], chalice_client: Client) -> None:
    owner = alice.user["id"]
    old_insert = record("INSERT", new=stored(owner, note["id"]))
    alice.put(f"/notes/{note['id']}", {"body": "Newer  edit"})
    newer = record("MODIFY", new=stored(owner, note["id"]))
    # The newer edit's record is processed first, then the stale insert arrives.
    assert invoke(chalice_client, newer, old_insert) == []
    shown = alice.get(f"/notes/{note['id']}").json
    assert shown["body"] == "Newer edit"
    assert shown["original_body"] == "Newer  edit"
    # And the stale insert alone, before the newer record, leaves the pending edit untouched.
    alice.put(f"/notes/{note['id']}", {"body": "Third  edit"})
    assert invoke(chalice_client, old_insert) == []
    assert alice.get(f"/notes/{note['id']}").json["body"] == "Third  edit"


def test_poison_record_is_the_only_failure(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", {"first_name": "P"}).json
    first = alice.post(f"/contacts/{contact['id']}/notes", {"body": "one  #a"}).json
    second = alice.post(f"/contacts/{contact['id']}/notes", {"body": "two  #b"}).json
    poison = record("INSERT", new=stored(owner, first["id"]))
    del poison["dynamodb"]["NewImage"]["note_id"]
    poison["dynamodb"]["NewImage"]["version"] = {"S": "not a number"}
    good = [record("INSERT", new=stored(owner, n["id"])) for n in (first, second)]
    failed = invoke(chalice_client, good[0], poison, good[1])
    assert failed == [poison["dynamodb"]["SequenceNumber"]]
    for n, text in ((first, "one #a"), (second, "two #b")):
        assert alice.get(f"/notes/{n['id']}").json["body"] == text


def test_own_write_back_is_ignored_without_a_call(
    alice: Api, note: dict[str, Any], chalice_client: Client, dynamodb: CallCounter
) -> None:
    owner = alice.user["id"]
    pending = stored(owner, note["id"])
    invoke(chalice_client, record("INSERT", new=pending))
    write_back = record("MODIFY", new=stored(owner, note["id"]), old=pending)
    dynamodb.reset()
    assert invoke(chalice_client, write_back) == []
    assert dynamodb.calls == []


def test_record_for_a_deleted_note_is_harmless(alice: Api, note: dict[str, Any], chalice_client: Client) -> None:
    item = stored(alice.user["id"], note["id"])
    alice.delete(f"/notes/{note['id']}")
    assert invoke(chalice_client, record("INSERT", new=item)) == []
    assert Note.count(alice.user["id"]) == 0  # not resurrected by the write-back


def test_note_that_cannot_be_stored_is_marked_failed_after_retries(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", {"first_name": "Big"}).json
    # 100,000 four-byte characters: with its normalized copy the item would pass 400 KB.
    text = "😀" * 99_990 + "  end"
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": text}).json
    delivery = record("INSERT", new=stored(owner, note["id"]))
    for attempt in (1, 2):
        assert invoke(chalice_client, delivery) == [delivery["dynamodb"]["SequenceNumber"]], attempt
        assert alice.get(f"/notes/{note['id']}").json["processing_status"] == "pending"
    assert invoke(chalice_client, delivery) == []
    shown = alice.get(f"/notes/{note['id']}").json
    assert shown["processing_status"] == "failed"
    assert "could not be stored" in shown["failure_reason"]
    assert shown["body"] == text  # nothing lost
    assert shown["original_body"] == text


def test_normalizer_needs_no_signing_secret(alice: Api, note: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream Lambda signs nothing, so a deployed stage runs it without JWT_SECRET."""
    from app import app

    item = stored(alice.user["id"], note["id"])
    monkeypatch.delenv("JWT_SECRET")
    for name in TEST_PASSWORD_HASH:  # the suite's cheap hashing, which a deployed stage refuses
        monkeypatch.delenv(name)
    runtime.reset()
    with Client(app, stage_name="dev", project_dir=str(ROOT)) as dev:
        payload = dev.lambda_.invoke("normalize_notes", event(record("INSERT", new=item))).payload
    assert payload == {"batchItemFailures": []}
    assert stored(alice.user["id"], note["id"]).processing_status == "processed"


def test_failed_attempt_count_in_the_stream_is_not_new_work(
    alice: Api, chalice_client: Client, dynamodb: CallCounter
) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", {"first_name": "Big"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "😀" * 99_990 + "  end"}).json
    pending = stored(owner, note["id"])
    delivery = record("INSERT", new=pending)
    assert invoke(chalice_client, delivery) == [delivery["dynamodb"]["SequenceNumber"]]
    counted = stored(owner, note["id"])
    assert counted.processing_attempts == 1
    dynamodb.reset()
    assert invoke(chalice_client, record("MODIFY", new=counted, old=pending)) == []
    assert dynamodb.calls == []  # our own attempt counter: no call, not counted again
    assert stored(owner, note["id"]).processing_attempts == 1


def test_failing_record_for_a_note_that_moved_on_is_dropped(alice: Api, chalice_client: Client) -> None:
    owner = alice.user["id"]
    contact = alice.post("/contacts", {"first_name": "Big"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "😀" * 99_990 + "  end"}).json
    delivery = record("INSERT", new=stored(owner, note["id"]))
    alice.put(f"/notes/{note['id']}", {"body": "short now"})
    # The stale record still cannot be stored... but the note moved on, so nothing is retried.
    assert invoke(chalice_client, delivery) == []
