"""The search's DynamoDB calls: one Query per term on the index, one BatchGetItem for a page.

Raw botocore calls through the models' shared client, for two reasons PynamoDB's iterators
cannot give: a Query that is exactly one request (PynamoDB fetches further pages until its
limit is reached), and one BatchGetItem over two tables (its batch_get reads one model's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from chalicelib.models import Contact, Note, SearchEntry, dynamodb_client
from chalicelib.search import keys
from chalicelib.store import dynamodb_errors

# A term reads at most this many postings, in word order (one Query: 1,000 postings of about
# 150 bytes stay well under a Query's 1 MB page). The bound keeps a search's cost independent
# of the workspace's size; a broader term is cut, and README says so.
MAX_POSTINGS_PER_TERM = 1000


class Posting(NamedTuple):  # a tuple: a search builds up to 8,000 of them
    word: str
    kind: str  # "contact" | "note"
    item_id: str
    fields: str  # field codes (chalicelib.search.text.FIELD_NAMES)


def postings(workspace_id: str, lookup: str, exact: bool) -> list[Posting]:
    """One Query: the postings of the words that start with `lookup` (or are it, when exact).

    Only the key (word, kind, item id) and the field codes are read: each attribute costs
    botocore several microseconds per posting to parse, and recency comes from the item's
    id (a ULID, made when the item was: the lists' "newest first" too), not `created`.
    """
    with dynamodb_errors():
        out = dynamodb_client().query(
            TableName=SearchEntry.Meta.table_name,
            KeyConditionExpression="#bucket = :bucket AND begins_with(#key, :prefix)",
            ExpressionAttributeNames={"#bucket": "bucket", "#key": "key", "#fields": "fields"},
            ExpressionAttributeValues={
                ":bucket": {"S": keys.posting_bucket(workspace_id, lookup)},
                ":prefix": {"S": keys.lookup_prefix(lookup, exact)},
            },
            ProjectionExpression="#key, #fields",
            Limit=MAX_POSTINGS_PER_TERM,
        )
    return [_posting(item) for item in out.get("Items", [])]


def _posting(item: dict[str, Any]) -> Posting:
    word, kind, item_id = keys.parse_posting_key(item["key"]["S"])
    return Posting(word, kind, item_id, item.get("fields", {}).get("S", ""))


Ref = tuple[str, str]  # (kind, item id)


@dataclass(frozen=True)
class Loaded:
    items: dict[Ref, Contact | Note]  # found (a ref missing here and from `unprocessed` is gone)
    unprocessed: set[Ref]  # DynamoDB did not read them this time (throttled, or past 16 MB)


def load(workspace_id: str, refs: list[Ref]) -> Loaded:
    """One BatchGetItem over the contacts and notes tables (at most 100 refs), strongly
    consistent: an item renamed or deleted a moment ago is read as it is now."""
    tables: dict[str, tuple[type[Contact] | type[Note], str]] = {
        "contact": (Contact, "contact_id"),
        "note": (Note, "note_id"),
    }
    request: dict[str, Any] = {}
    for kind, (model, id_name) in tables.items():
        wanted = [{"owner_id": {"S": workspace_id}, id_name: {"S": item_id}} for k, item_id in refs if k == kind]
        if wanted:
            request[model.Meta.table_name] = {"Keys": wanted, "ConsistentRead": True}
    if not request:
        return Loaded({}, set())
    with dynamodb_errors():
        out = dynamodb_client().batch_get_item(RequestItems=request)
    found: dict[Ref, Contact | Note] = {}
    unprocessed: set[Ref] = set()
    for kind, (model, id_name) in tables.items():
        for raw in out.get("Responses", {}).get(model.Meta.table_name, []):
            found[(kind, raw[id_name]["S"])] = model.from_raw_data(raw)
        for key in out.get("UnprocessedKeys", {}).get(model.Meta.table_name, {}).get("Keys", []):
            unprocessed.add((kind, key[id_name]["S"]))
    return Loaded(found, unprocessed)
