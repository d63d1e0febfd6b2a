"""The merge template in infra/: what the deployed stack adds that Chalice cannot express.

(Packaging it with `chalice package` and validating the result offline is a later step.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    template = json.loads((ROOT / "infra" / "template.json").read_text())
    return template["Resources"]  # type: ignore[no-any-return]


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r.get("Type") == kind}


def test_usage_plans_keys_and_authorizer_key_source(resources: dict[str, Any]) -> None:
    assert resources["RestAPI"]["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    plans = _of_type(resources, "AWS::ApiGateway::UsagePlan")
    assert len(plans) >= 2
    for plan in plans.values():
        props = plan["Properties"]
        assert props["Throttle"]["RateLimit"] > 0 and props["Throttle"]["BurstLimit"] > 0
        assert props["Quota"]["Limit"] > 0
    keys = _of_type(resources, "AWS::ApiGateway::ApiKey")
    links = _of_type(resources, "AWS::ApiGateway::UsagePlanKey")
    assert {link["Properties"]["KeyId"]["Ref"] for link in links.values()} == set(keys)
    assert {link["Properties"]["UsagePlanId"]["Ref"] for link in links.values()} == set(plans)
    env = resources["JwtAuth"]["Properties"]["Environment"]["Variables"]
    assert "USAGE_PLAN_KEYS" in env


@pytest.mark.parametrize("response_type", ["THROTTLED", "QUOTA_EXCEEDED"])
def test_gateway_429s_match_the_apps_problem(
    resources: dict[str, Any], response_type: str, alice: Any, limits: Any
) -> None:
    # In the API definition itself (x-amazon-apigateway-gateway-responses), not as separate resources.
    responses = resources["RestAPI"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    gateway = responses[response_type]
    assert gateway["statusCode"] == 429
    assert gateway["responseParameters"]["gatewayresponse.header.Content-Type"] == "'application/problem+json'"
    body = json.loads(gateway["responseTemplates"]["application/json"])
    # The app's own 429, for comparison.
    limits(rate_limit_burst=1, rate_limit_per_second=0.1)
    alice.get("/contacts")
    limited = alice.get("/contacts")
    assert limited.status == 429
    app_body = limited.json
    assert {k: body[k] for k in ("type", "title", "status")} == {k: app_body[k] for k in ("type", "title", "status")}
    assert set(body) <= set(app_body)


def _mapping(resources: dict[str, Any], function: str) -> dict[str, Any]:
    return resources[function]["Properties"]["Events"][f"{function}DynamodbEventSource"]["Properties"]  # type: ignore[no-any-return]


def test_stream_mapping_settings(resources: dict[str, Any]) -> None:
    source = _mapping(resources, "NormalizeNotes")
    assert source["Stream"] == {"Fn::GetAtt": ["NotesTable", "StreamArn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["BisectBatchOnFunctionError"] is True
    assert source["MaximumRetryAttempts"] == 3
    assert 0 < source["MaximumRecordAgeInSeconds"] <= 86_400
    assert source["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["NormalizerDeadLetterQueue", "Arn"]
    }
    assert resources["NotesTable"]["Properties"]["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


@pytest.mark.parametrize(("function", "table"), [("IndexContacts", "ContactsTable"), ("IndexNotes", "NotesTable")])
def test_search_index_mappings_fail_as_the_normalizers_do(resources: dict[str, Any], function: str, table: str) -> None:
    """Each indexer reads its table's stream (the notes stream a second time, beside the
    normalizer) with the normalizer's failure settings, into the search index's own queue."""
    source = _mapping(resources, function)
    assert source["Stream"] == {"Fn::GetAtt": [table, "StreamArn"]}
    normalizer = _mapping(resources, "NormalizeNotes")
    same = ("FunctionResponseTypes", "BisectBatchOnFunctionError", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds")
    assert {k: source[k] for k in same} == {k: normalizer[k] for k in same}
    assert source["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["SearchIndexDeadLetterQueue", "Arn"]},
    }
    # A REMOVE record must carry the old image: it names the workspace and the item to unindex.
    assert resources[table]["Properties"]["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert resources[function]["Properties"]["Environment"]["Variables"] == {
        "SEARCH_TABLE": {"Ref": "SearchTable"},
        "AUDIT_TABLE": {"Ref": "AuditTable"},  # the same consumer records the change events (#17)
        "DELETION_MARKS_TABLE": {"Ref": "DeletionMarksTable"},
        "AUDIT_RETENTION_DAYS": {"Ref": "AuditRetentionDays"},
    }


def test_workspace_purge_mapping_settings(resources: dict[str, Any]) -> None:
    """The deletion sweep's mapping: the workspaces stream, as bounded as the normalizer's."""
    events = resources["PurgeWorkspaces"]["Properties"]["Events"]
    source = events["PurgeWorkspacesDynamodbEventSource"]["Properties"]
    assert source["Stream"] == {"Fn::GetAtt": ["WorkspacesTable", "StreamArn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["BisectBatchOnFunctionError"] is True
    assert 1 <= source["MaximumRetryAttempts"] <= 10
    assert 0 < source["MaximumRecordAgeInSeconds"] <= 86_400
    assert source["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["WorkspacePurgeDeadLetterQueue", "Arn"]
    }
    stream = resources["WorkspacesTable"]["Properties"]["StreamSpecification"]
    assert stream["StreamViewType"] == "NEW_AND_OLD_IMAGES"  # the REMOVE record carries the old image


def test_tables_match_the_models(resources: dict[str, Any]) -> None:
    from chalicelib.models import TABLES

    for model, (_, name) in TABLES.items():
        props = resources[name]["Properties"]
        schema = model._get_schema()
        assert sorted(props["KeySchema"], key=lambda k: k["KeyType"]) == sorted(
            ({"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in schema["key_schema"]),
            key=lambda k: k["KeyType"],
        ), name
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        indexes = {i["index_name"]: i for i in schema.get("global_secondary_indexes", [])}
        assert {i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])} == set(indexes), name
        for index in props.get("GlobalSecondaryIndexes", []):
            assert index["KeySchema"][0]["KeyType"] == "HASH", name  # CloudFormation: the hash key first
            by_type = sorted(indexes[index["IndexName"]]["key_schema"], key=lambda k: k["KeyType"])
            assert sorted(index["KeySchema"], key=lambda k: k["KeyType"]) == by_type, name
        assert ("StreamSpecification" in props) == hasattr(model.Meta, "stream_view_type"), name
    ttl = {"AttributeName": "expires_at", "Enabled": True}
    assert resources["RateLimitsTable"]["Properties"]["TimeToLiveSpecification"] == ttl
    assert resources["SearchTable"]["Properties"]["TimeToLiveSpecification"] == ttl  # tombstones end
    assert resources["DeletionMarksTable"]["Properties"]["TimeToLiveSpecification"] == ttl
    assert resources["AuditTable"]["Properties"]["TimeToLiveSpecification"] == ttl  # AUDIT_RETENTION_DAYS
    # Idempotency records end by TTL in the attribute Powertools writes, which the model names too.
    expiring = {"AttributeName": "expiration", "Enabled": True}
    assert resources["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"] == expiring
    from chalicelib.models import IdempotencyRecord

    assert IdempotencyRecord._ttl_attribute().attr_name == "expiration"


def test_gateway_401_matches_the_local_one(resources: dict[str, Any], dynamodb: object) -> None:
    """The authorizer's own 401 under Chalice's plain local gateway (`chalice local`, which
    knows nothing of devtools.gateway) is the deployed UNAUTHORIZED gateway response."""
    from app import app

    responses = resources["RestAPI"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    gateway = json.loads(responses["UNAUTHORIZED"]["responseTemplates"]["application/json"])
    with Client(app, stage_name="local", project_dir=str(ROOT)) as plain:
        local = plain.http.get("/api/v1/contacts", headers={"authorization": "Bearer not-a-token"})
    assert local.status_code == 401
    assert local.headers["WWW-Authenticate"] == "Bearer"
    body = json.loads(local.body)
    keys = ("type", "title", "status", "detail")
    assert {k: gateway[k] for k in keys} == {k: body[k] for k in keys}
    assert set(body) == set(gateway) and body["request_id"]
