"""The embedded DynamoDB's TransactWriteItems, without copying whole tables.

moto (5.2.5) deep-copies every table a transaction touches before running it, to put the copy
back if the transaction is cancelled. That costs time in proportion to the tables, on every
transaction: 20 ms with 100 contacts, about 0.2 s with 600, seconds with 10,000, so a
10,000-row import (about 300 transactions) never finished under `make run`. Putting the copy
back also drops whatever another thread wrote to the table meanwhile (the stream pump's
normalizer, another request), and the copy itself fails ("dictionary changed size during
iteration") when another thread writes while it is made.

This replacement does what DynamoDB does: every condition is checked against the items as
they are, and only when all hold are the writes applied; nothing needs undoing. Should a
write fail while being applied (moto refusing an update expression), the writes before it
are undone item by item, with their stream records. Transactions run one at a time (a lock),
as moto's own cannot run concurrently either. Installed by `make run` (devtools.local_stack),
the test suite (tests/conftest.py) and the benchmarks (bench/inprocess.py), so all three run
on the same emulator. Written by hand: moto offers no such option, and its maintainers'
answer to large-table transactions is DynamoDB Local, which needs Java.
"""

from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.RLock()
_installed = False


def install() -> None:
    """Replace moto's DynamoDBBackend.transact_write_items (idempotent)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    _installed = True


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _LOCK:
        operations = []
        seen: set[tuple[str, str]] = set()
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            key = _key(self, op_type, op)
            marker = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            operations.append((op_type, op, key))
        errors = [_check(self, op_type, op, key) for op_type, op, key in operations]
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        _apply_all(self, operations)


def _key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _check(backend: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(None, None, None) when the operation's condition holds; else its cancellation reason."""
    from moto.dynamodb.comparisons import get_filter_expression

    if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
        return ("ValidationException", "Unsupported transaction operation", None)
    expression = op.get("ConditionExpression")
    if expression is None:
        return (None, None, None)
    current = backend.get_item(op["TableName"], key)
    condition = get_filter_expression(expression, op.get("ExpressionAttributeNames"),
                                      op.get("ExpressionAttributeValues"))  # fmt: skip
    if condition.expr(current):
        return (None, None, None)
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", "The conditional request failed", old)


def _apply_all(backend: Any, operations: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    done: list[tuple[str, dict[str, Any], Any, list[Any]]] = []
    try:
        for op_type, op, key in operations:
            if op_type == "ConditionCheck":
                continue
            table_name = op["TableName"]
            before = backend.get_item(table_name, key)
            shard = backend.get_table(table_name).stream_shard
            count = len(shard.items) if shard is not None else 0
            _apply(backend, op_type, op, key)
            added = shard.items[count:] if shard is not None else []
            done.append((table_name, key, before.to_json()["Attributes"] if before else None, added))
    except Exception:
        for table_name, key, before, added in reversed(done):
            shard = backend.get_table(table_name).stream_shard
            count = len(shard.items) if shard is not None else 0
            if before is None:
                backend.delete_item(table_name, key)
            else:
                backend.put_item(table_name, before)
            if shard is not None:  # neither the write nor its undoing happened, for the stream
                undone = {id(record) for record in [*added, *shard.items[count:]]}
                shard.items[:] = [record for record in shard.items if id(record) not in undone]
        raise


def _apply(backend: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                         expression_attribute_values=values)  # fmt: skip
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key, expression_attribute_names=names,
                            expression_attribute_values=values)  # fmt: skip
    else:
        backend.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                            expression_attribute_names=names, expression_attribute_values=values)  # fmt: skip
