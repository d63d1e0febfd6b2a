"""Search under `make run`'s stack: the contacts' and notes' streams feed the very handlers the
index Lambdas run (the notes stream a second time, beside the normalizer), and a change is
searchable within SEARCHABLE_SECONDS (a note takes two rounds: the normalizer's write-back,
then the index)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import requests

from tests.stack import free_port, poll, running_stack, signed_in, start_moto_server, stop_process

SEARCHABLE_SECONDS = 3.0
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


def _found(api: str, headers: dict[str, str], q: str, item_id: str) -> bool:
    reply = requests.get(api + "/search", params={"q": q}, headers=headers, timeout=5)
    assert reply.status_code == 200, reply.text
    return item_id in [item["id"] for item in reply.json()["items"]]


def test_changes_are_searchable_within_3_seconds() -> None:
    """Through the search route (GET /api/v1/search), as a client sees it."""
    # Polling sends up to 20 requests a second: more than the default limits refill.
    with running_stack(RATE_LIMIT_BURST="100000", RATE_LIMIT_PER_SECOND="100000") as stack:
        api = stack.base + "/api/v1"
        headers = signed_in(stack.base, "searcher")
        made = requests.post(api + "/contacts", json={"first_name": "José", "last_name": "Müller"}, headers=headers,
                             timeout=5)  # fmt: skip
        assert made.status_code == 201, made.text
        contact_id = made.json()["id"]
        poll(lambda: _found(api, headers, "jose", contact_id), SEARCHABLE_SECONDS)

        renamed = requests.patch(f"{api}/contacts/{contact_id}", json={"first_name": "Pedro"}, headers=headers,
                                 timeout=5)  # fmt: skip
        assert renamed.status_code == 200, renamed.text
        poll(
            lambda: not _found(api, headers, "jose", contact_id) and _found(api, headers, "pedro", contact_id),
            SEARCHABLE_SECONDS,
        )

        note = requests.post(f"{api}/contacts/{contact_id}/notes", json={"body": "Met  at the #fair"}, headers=headers,
                             timeout=5)  # fmt: skip
        assert note.status_code == 201, note.text
        poll(lambda: _found(api, headers, "#fair", note.json()["id"]), SEARCHABLE_SECONDS)


def _postings(client: Any, bucket: str, item_id: str) -> set[str]:
    """The words posted for an item in one bucket of the index (one Query, as a search term is)."""
    items = client.query(
        TableName="contact-notes-search",
        KeyConditionExpression="#b = :b",
        ExpressionAttributeNames={"#b": "bucket"},
        ExpressionAttributeValues={":b": {"S": bucket}},
        ConsistentRead=True,
    )["Items"]
    return {item["key"]["S"].split("|")[0] for item in items if item["key"]["S"].endswith("|" + item_id)}


def test_the_pumps_keep_the_index_within_3_seconds_and_dead_letter_what_fails(tmp_path: Path) -> None:
    """What the stack's pumps store in the index, read from its store directly; a record the
    contacts' indexer cannot read ends in the dead-letter file, named by its consumer."""
    dead_letters = tmp_path / "dead.jsonl"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # A store in a process of its own: the poison item must not outlive this test (moto's
    # state in this process would, into the next stack that reads its streams from the start).
    moto = start_moto_server(port, env=CREDENTIALS)
    try:
        _index_through_the_stack(endpoint, dead_letters)
    finally:
        stop_process(moto)


def _index_through_the_stack(endpoint: str, dead_letters: Path) -> None:
    with running_stack(DYNAMODB_ENDPOINT=endpoint, DEAD_LETTER_FILE=str(dead_letters), **CREDENTIALS) as stack:
        store = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                             aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        poison = {"owner_id": {"S": "someone"}, "contact_id": {"S": "poison"}, "first_name": {"S": "P"},
                  "version": {"S": "not-a-number"}}  # fmt: skip
        store.put_item(TableName="contact-notes-contacts", Item=poison)
        api = stack.base + "/api/v1"
        headers = signed_in(stack.base, "indexed")
        me = requests.get(api + "/auth/me", headers=headers, timeout=5).json()
        workspace = me["workspace_id"]
        contact = requests.post(api + "/contacts", json={"first_name": "Zoë"}, headers=headers, timeout=5).json()
        poll(lambda: _postings(store, f"{workspace}#z", contact["id"]) == {"zoe"}, SEARCHABLE_SECONDS)

        note = requests.post(f"{api}/contacts/{contact['id']}/notes", json={"body": "Quarterly  #review"},
                             headers=headers, timeout=5).json()  # fmt: skip
        poll(lambda: _postings(store, f"{workspace}##", note["id"]) == {"#review"}, SEARCHABLE_SECONDS)
        assert _postings(store, f"{workspace}#q", note["id"]) == {"quarterly"}

        lines = poll(lambda: dead_letters.read_text().splitlines() if dead_letters.exists() else [])
        entries = [json.loads(line) for line in lines]
        assert [(e["consumer"], e["record"]["dynamodb"]["Keys"]["contact_id"]["S"]) for e in entries] == [
            ("index_contacts", "poison")
        ]
