"""Helpers for the search tests: the contacts' and notes' streams delivered in-process.

`index_now` reads moto's streams (in-process, as the event source mappings read
DynamoDB's) and invokes the very Lambda functions the template wires to them, through
`client.lambda_.invoke`: notes records to the normalizer and to the notes' indexer,
contacts records to the contacts' indexer. It repeats until no stream has anything new
(the normalizer's write-backs are records too), so after it returns the index has caught
up with every change made so far.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from chalice.test import Client

from chalicelib import runtime
from chalicelib.models import dynamodb_client
from devtools.stream_pump import lambda_shape

# Per stream ARN: per shard, the last sequence number delivered (a table made by a new test
# has a new stream, so nothing carries over).
_delivered: dict[str, dict[str, str]] = {}
MAX_ROUNDS = 10


def _new_records(streams: Any, stream_arn: str) -> list[dict[str, Any]]:
    seen = _delivered.setdefault(stream_arn, {})
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        shard_id = shard["ShardId"]
        if shard_id in seen:
            where = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seen[shard_id]}
        else:
            where = {"ShardIteratorType": "TRIM_HORIZON"}
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, **where)["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page["Records"]:
                break
            records += [lambda_shape(record, stream_arn) for record in page["Records"]]
            seen[shard_id] = page["Records"][-1]["dynamodb"]["SequenceNumber"]
            iterator = page.get("NextShardIterator")
    return records


def index_now(client: Client) -> int:
    """Deliver every new stream record; returns how many records were delivered."""
    settings = runtime.settings()
    tables = dynamodb_client()
    # botocore otherwise builds account-based endpoints that moto does not route (as in the pump).
    config = Config(account_id_endpoint_mode="disabled")
    streams = boto3.client("dynamodbstreams", region_name=settings.aws_region, config=config)
    arns = {
        name: tables.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        for name, table in (("contacts", settings.contacts_table), ("notes", settings.notes_table))
    }
    functions = {"contacts": ("index_contacts",), "notes": ("normalize_notes", "index_notes")}
    delivered = 0
    for _ in range(MAX_ROUNDS):
        quiet = True
        for name, arn in arns.items():
            records = _new_records(streams, arn)
            if not records:
                continue
            quiet, delivered = False, delivered + len(records)
            for function in functions[name]:
                payload = client.lambda_.invoke(function, {"Records": records}).payload
                assert payload == {"batchItemFailures": []}, (function, payload)
        if quiet:
            return delivered
    raise AssertionError(f"the streams were still busy after {MAX_ROUNDS} rounds")
