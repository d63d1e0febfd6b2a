"""Creating the tables (`make run`, `make tables`, every test's moto): what the models say, once."""

from __future__ import annotations

from typing import Any

from moto import mock_aws

from chalicelib import runtime
from chalicelib.models import ALL_MODELS, create_tables, dynamodb_client


def _described(client: Any, name: str) -> dict[str, Any]:
    return dict(client.describe_table(TableName=name)["Table"])


def test_every_table_is_made_as_its_model_says_and_only_once() -> None:
    with mock_aws():
        created = create_tables(runtime.settings())
        client = dynamodb_client()
        assert sorted(created) == sorted(model.Meta.table_name for model in ALL_MODELS)
        for model in ALL_MODELS:
            table = _described(client, model.Meta.table_name)
            assert table["TableStatus"] == "ACTIVE"
            assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
            stream = getattr(model.Meta, "stream_view_type", None)
            assert table.get("StreamSpecification", {}).get("StreamViewType") == stream, model.__name__
            ttl = client.describe_time_to_live(TableName=model.Meta.table_name)["TimeToLiveDescription"]
            expected = model._ttl_attribute().attr_name if model._ttl_attribute() else None
            assert ttl.get("AttributeName") == expected, model.__name__
        assert create_tables(runtime.settings()) == []  # idempotent: nothing made twice


def test_a_table_still_creating_is_waited_for_before_its_ttl_is_set() -> None:
    """DynamoDB answers CreateTable with CREATING (moto: ACTIVE at once): then the wait runs."""
    with mock_aws():
        create_tables(runtime.settings())  # binds the models; every table now exists
        client = dynamodb_client()
        ttl_model = next(model for model in ALL_MODELS if model._ttl_attribute())
        name = ttl_model.Meta.table_name
        client.delete_table(TableName=name)
        sent: list[str] = []

        def creating(model: Any, parsed: dict[str, Any], **_: Any) -> None:
            sent.append(model.name)
            if model.name == "CreateTable" and "TableDescription" in parsed:  # the one it made
                sent.append("created")
                parsed["TableDescription"]["TableStatus"] = "CREATING"

        client.meta.events.register("after-call.dynamodb", creating)
        try:
            assert create_tables(runtime.settings()) == [name]
        finally:
            client.meta.events.unregister("after-call.dynamodb", creating)
        assert "DescribeTable" in sent[sent.index("created") :]  # waited until ACTIVE
        ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] == "ENABLED"
