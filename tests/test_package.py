"""The deployable stack: `chalice package` + infra/, translated to plain CloudFormation and linted.

Offline and without AWS credentials: the Lambda wheels come from .cache/lambda-wheels
(`make wheels`), SAM is translated by aws-sam-translator as CloudFormation would, and
cfn-lint checks the result (linting the SAM template alone misses broken references).
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from devtools.package import Bundle, check_runtime, package


def _translate(sam: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from samtranslator.public.translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    class NoIam:  # the template names no managed policies, so the loader must never call IAM
        def get_paginator(self, *_: object, **__: object) -> None:
            raise AssertionError("the SAM translation tried to call IAM")

    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":  # as `aws cloudformation package` does
            resource["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    keys = {"DefaultTierApiKey": "d" * 24, "ProTierApiKey": "p" * 24}
    return transform(sam, keys, ManagedPolicyLoader(NoIam()))  # type: ignore[no-any-return]


_PACKAGED: dict[str, tuple[Bundle, dict[str, Any]]] = {}  # stage -> bundle, translated template


def _without_aws_credentials(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    """No credentials to be found anywhere: any AWS call would fail."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(where / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(where / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _packaged(stage: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, dict[str, Any]]:
    """Each stage packaged and translated once per worker, however the tests are ordered (the
    parallel scheduler may interleave the stages, which would rebuild a module fixture)."""
    if stage not in _PACKAGED:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _without_aws_credentials(monkeypatch, tmp_path_factory.mktemp("no-aws"))
            bundle = package(stage, tmp_path_factory.mktemp(stage))
        with pytest.MonkeyPatch.context() as monkeypatch:
            _PACKAGED[stage] = bundle, _translate(json.loads(bundle.template.read_text()), monkeypatch)
    return _PACKAGED[stage]


@pytest.fixture(scope="module", params=["dev", "prod"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Bundle]:
    stage = str(request.param)
    return stage, _packaged(stage, tmp_path_factory)[0]


@pytest.fixture(scope="module")
def cfn(built: tuple[str, Bundle], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Translated once per stage; the tests only read it."""
    return _packaged(built[0], tmp_path_factory)[1]


def _of_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def test_translated_template_passes_cfn_lint(cfn: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "cfn.json"
    path.write_text(json.dumps(cfn))
    linter = str(Path(sys.executable).parent / "cfn-lint")
    done = subprocess.run([linter, "--format", "json", str(path)], capture_output=True, text=True, timeout=300)
    findings = json.loads(done.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)


def test_tables(cfn: dict[str, Any], built: tuple[str, Bundle]) -> None:
    from chalicelib.models import TABLES

    tables = _of_type(cfn, "AWS::DynamoDB::Table")
    assert len(tables) == len(TABLES)
    for table in tables:
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        protected = built[0] == "prod"
        assert props.get("DeletionProtectionEnabled", False) is protected
        assert (table.get("DeletionPolicy") == "Retain") is protected
    ttl = [t for t in tables if "TimeToLiveSpecification" in t["Properties"]]
    assert sorted(t["Properties"]["TimeToLiveSpecification"]["AttributeName"] for t in ttl) == [
        "expiration",  # the idempotency records' (Powertools' attribute name)
        # the limiter's, the sessions', the search index's (tombstones), the deleters' marks, the audit
        # log's, the live connections', the webhook deliveries'
        *["expires_at"] * 7,
    ]
    assert all(t["Properties"]["TimeToLiveSpecification"]["Enabled"] for t in ttl)
    streams = [t for t in tables if "StreamSpecification" in t["Properties"]]
    # contacts (search, events), notes (normalizer; search, events), workspaces (the deletion sweep),
    # the audit log (the outbox of webhooks and live updates: new entries only)
    views = sorted(t["Properties"]["StreamSpecification"]["StreamViewType"] for t in streams)
    assert views == ["NEW_AND_OLD_IMAGES"] * 3 + ["NEW_IMAGE"]


# Each stream consumer: the table whose stream it reads, and its dead-letter queue.
CONSUMERS = {
    "NormalizeNotes": ("NotesTable", "NormalizerDeadLetterQueue"),
    "PurgeWorkspaces": ("WorkspacesTable", "WorkspacePurgeDeadLetterQueue"),
    "IndexContacts": ("ContactsTable", "SearchIndexDeadLetterQueue"),
    "IndexNotes": ("NotesTable", "SearchIndexDeadLetterQueue"),  # the notes stream's second reader
    "PushLiveUpdates": ("AuditTable", "LiveUpdatesDeadLetterQueue"),
    "FanOutWebhooks": ("AuditTable", "WebhookFanOutDeadLetterQueue"),
}
QUEUE_CONSUMERS = {"DeliverWebhooks": "WebhookDeliveryQueue"}  # SQS event sources, beside the streams


def test_stream_mapping_and_dead_letters(cfn: dict[str, Any]) -> None:
    """Each stream consumer: its table's stream, partial failures, bisect, bounded retries and
    record age, and a dead-letter queue of its own concern (both search indexers share one)."""
    mappings = {m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
                for m in _of_type(cfn, "AWS::Lambda::EventSourceMapping")}  # fmt: skip
    assert set(mappings) == set(CONSUMERS) | set(QUEUE_CONSUMERS)
    for function, queue in QUEUE_CONSUMERS.items():
        props = mappings.pop(function)
        assert props["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["ScalingConfig"]["MaximumConcurrency"] >= 2
    for function, props in mappings.items():
        table, queue = CONSUMERS[function]
        assert props["EventSourceArn"] == {"Fn::GetAtt": [table, "StreamArn"]}, function
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["BisectBatchOnFunctionError"] is True
        assert 1 <= props["MaximumRetryAttempts"] <= 10
        assert 60 <= props["MaximumRecordAgeInSeconds"] <= 86_400
        assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue, "Arn"]}
    for function in ("NormalizeNotes", "IndexContacts", "IndexNotes"):
        assert mappings[function]["MaximumRetryAttempts"] == 3
    queues = {name: r for name, r in cfn["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    assert set(queues) == {queue for _, queue in CONSUMERS.values()} | {
        "WebhookDeliveryQueue",
        "WebhookDeliveryDeadLetterQueue",
    }
    redrive = queues["WebhookDeliveryQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["WebhookDeliveryDeadLetterQueue", "Arn"]}
    assert queues["WebhookDeliveryQueue"]["Properties"]["VisibilityTimeout"] >= 6 * 30  # six function timeouts


def test_usage_plans_and_keys(cfn: dict[str, Any]) -> None:
    (api,) = _of_type(cfn, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    assert len(_of_type(cfn, "AWS::ApiGateway::UsagePlan")) >= 2
    assert len(_of_type(cfn, "AWS::ApiGateway::ApiKey")) >= 2
    responses = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    assert {"UNAUTHORIZED", "THROTTLED", "QUOTA_EXCEEDED"} <= set(responses)


def test_cors_is_wired_through_the_stack(cfn: dict[str, Any]) -> None:
    """CorsAllowedOrigins reaches the API function; preflights reach it without the authorizer or
    an API key; the gateway's own answers echo the Origin only when the parameter is set."""
    assert cfn["Parameters"]["CorsAllowedOrigins"]["Default"] == ""
    assert cfn["Conditions"]["HasCorsOrigins"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowedOrigins"}, ""]}]}
    functions = {f["Properties"]["Handler"]: f["Properties"] for f in _of_type(cfn, "AWS::Lambda::Function")}
    variables = functions["app.app"]["Environment"]["Variables"]
    assert variables["CORS_ALLOWED_ORIGINS"] == {"Ref": "CorsAllowedOrigins"}
    (api,) = _of_type(cfn, "AWS::ApiGateway::RestApi")
    for path, operations in api["Properties"]["Body"]["paths"].items():
        assert "security" not in operations["options"], path
        assert not operations["options"].get("x-amazon-apigateway-api-key-source"), path
    for kind, entry in api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"].items():
        echo = entry["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert echo == {"Fn::If": ["HasCorsOrigins", "method.request.header.Origin", {"Ref": "AWS::NoValue"}]}, kind


def test_alarms(cfn: dict[str, Any]) -> None:
    metrics = sorted(a["Properties"]["MetricName"] for a in _of_type(cfn, "AWS::CloudWatch::Alarm"))
    assert metrics.count("5XXError") == 1
    assert metrics.count("Errors") == 12 and metrics.count("Throttles") == 12  # each function's
    assert metrics.count("ApproximateNumberOfMessagesVisible") == 6  # one per dead-letter queue
    # the normalizer's, each indexer's, the live fan-out's, the webhooks' fan-out's
    assert metrics.count("IteratorAge") == 5
    assert metrics.count("LiveDeliveriesFailed") == 1  # posts to live connections refused or throttled


def _role_actions(cfn: dict[str, Any], role: str) -> dict[str, list[Any]]:
    """Action -> resources granted to one function's role."""
    granted: dict[str, list[Any]] = {}
    for policy in cfn["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in statement["Action"]:
                granted.setdefault(action, []).extend(resources)
    return granted


def test_each_function_has_its_own_least_privilege_role(cfn: dict[str, Any]) -> None:
    roles = {name: r["Properties"]["Role"]["Fn::GetAtt"][0] for name, r in cfn["Resources"].items()
             if r["Type"] == "AWS::Lambda::Function"}  # fmt: skip
    assert len(set(roles.values())) == 12
    authorizer = _role_actions(cfn, roles["JwtAuth"])
    assert not [a for a in authorizer if a.startswith(("dynamodb:", "sqs:"))]  # verifies tokens only
    normalizer = _role_actions(cfn, roles["NormalizeNotes"])
    data = {a: r for a, r in normalizer.items() if a.startswith("dynamodb:") and "Stream" not in a
            and a not in ("dynamodb:GetRecords", "dynamodb:GetShardIterator")}  # fmt: skip
    assert data == {"dynamodb:UpdateItem": [{"Fn::GetAtt": ["NotesTable", "Arn"]}]}
    assert "sqs:SendMessage" in normalizer
    purge = _role_actions(cfn, roles["PurgeWorkspaces"])
    data = {a: r for a, r in purge.items() if a.startswith("dynamodb:") and "Stream" not in a
            and a not in ("dynamodb:GetRecords", "dynamodb:GetShardIterator")}  # fmt: skip
    tables = ("ContactsTable", "NotesTable", "MembershipsTable", "ContactEmailsTable", "WebhooksTable")
    swept = [{"Fn::GetAtt": [table, "Arn"]} for table in tables]
    assert data == {"dynamodb:Query": swept, "dynamodb:BatchWriteItem": swept}  # no Scan, nothing else
    assert purge["dynamodb:GetRecords"] == [{"Fn::GetAtt": ["WorkspacesTable", "StreamArn"]}]
    assert purge["sqs:SendMessage"] == [{"Fn::GetAtt": ["WorkspacePurgeDeadLetterQueue", "Arn"]}]
    for function, (table, queue) in CONSUMERS.items():
        if function.startswith("Index"):
            indexer = _role_actions(cfn, roles[function])
            data = {a: r for a, r in indexer.items() if a.startswith("dynamodb:") and "Stream" not in a
                    and a not in ("dynamodb:GetRecords", "dynamodb:GetShardIterator")}  # fmt: skip
            # The document read, the postings' differences, the document written: nothing else, one table.
            # Change events (#17): the deleter's mark read, the event appended to the audit log.
            search = [{"Fn::GetAtt": ["SearchTable", "Arn"]}]
            audit, marks = {"Fn::GetAtt": ["AuditTable", "Arn"]}, {"Fn::GetAtt": ["DeletionMarksTable", "Arn"]}
            assert data == {
                "dynamodb:GetItem": [*search, marks],
                "dynamodb:PutItem": [*search, audit],
                "dynamodb:BatchWriteItem": search,
            }
            assert indexer["dynamodb:GetRecords"] == [{"Fn::GetAtt": [table, "StreamArn"]}]
            assert indexer["sqs:SendMessage"] == [{"Fn::GetAtt": [queue, "Arn"]}]
    _assert_webhook_roles(cfn, roles)
    api = _role_actions(cfn, roles["APIHandler"])
    assert "dynamodb:Scan" not in api and "dynamodb:GetRecords" not in api
    assert api["sqs:SendMessage"] == [{"Fn::GetAtt": ["WebhookDeliveryQueue", "Arn"]}]  # the test route's only
    assert {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"} <= set(api)
    # Search: one Query per term on the index, one BatchGetItem over the contacts and notes found.
    assert {"Fn::GetAtt": ["SearchTable", "Arn"]} in api["dynamodb:Query"]
    for table in ("ContactsTable", "NotesTable"):
        assert {"Fn::GetAtt": [table, "Arn"]} in api["dynamodb:BatchGetItem"]
    assert not [a for a, r in api.items() if a != "dynamodb:Query" and {"Fn::GetAtt": ["SearchTable", "Arn"]} in r]
    # One contact per email: claims put and released in the contact's transactions, read for a 409.
    claims = {"Fn::GetAtt": ["ContactEmailsTable", "Arn"]}
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"):
        assert claims in api[action], action
    # Idempotency records (Powertools): put, read, updated with the answer, deleted on failure; nothing else.
    records = {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    assert sorted(a for a, r in api.items() if records in r) == [
        "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]  # fmt: skip


def _data_actions(granted: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """A role's DynamoDB permissions on tables (not on streams)."""
    stream_reads = ("dynamodb:GetRecords", "dynamodb:GetShardIterator")
    return {a: r for a, r in granted.items() if a.startswith("dynamodb:") and "Stream" not in a
            and a not in stream_reads}  # fmt: skip


def test_live_updates_websocket_api(cfn: dict[str, Any]) -> None:
    """Chalice's WebSocket API with the $default route answering the client (ping), a throttled
    stage, and least-privilege roles: the connect handler puts connections and reads the
    signing secret, the disconnect handler gets and deletes them, the message handler touches
    nothing, and only the fan-out may post to (and close) connections, of this API's stage."""
    resources = cfn["Resources"]
    (api,) = _of_type(cfn, "AWS::ApiGatewayV2::Api")
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in _of_type(cfn, "AWS::ApiGatewayV2::Route")}
    assert set(routes) == {"$connect", "$default", "$disconnect"}
    assert routes["$default"]["RouteResponseSelectionExpression"] == "$default"
    (answer,) = _of_type(cfn, "AWS::ApiGatewayV2::RouteResponse")
    assert answer["Properties"] == {"ApiId": {"Ref": "WebsocketAPI"}, "RouteId": {"Ref": "WebsocketMessageRoute"},
                                    "RouteResponseKey": "$default"}  # fmt: skip
    assert "WebsocketMessageRouteResponse" in resources["WebsocketAPIDeployment"]["DependsOn"]
    (stage,) = _of_type(cfn, "AWS::ApiGatewayV2::Stage")
    throttle = stage["Properties"]["DefaultRouteSettings"]
    assert throttle["ThrottlingBurstLimit"] > 0 and throttle["ThrottlingRateLimit"] > 0
    roles = {name: r["Properties"]["Role"]["Fn::GetAtt"][0] for name, r in resources.items()
             if r["Type"] == "AWS::Lambda::Function"}  # fmt: skip
    connections = [{"Fn::GetAtt": ["ConnectionsTable", "Arn"]}]
    connect = _role_actions(cfn, roles["WebsocketConnect"])
    assert _data_actions(connect) == {"dynamodb:PutItem": connections}  # one transaction of two puts
    assert connect["secretsmanager:GetSecretValue"] == [{"Ref": "JwtSecret"}]
    assert _data_actions(_role_actions(cfn, roles["WebsocketDisconnect"])) == {
        "dynamodb:GetItem": connections, "dynamodb:DeleteItem": connections}  # fmt: skip
    message = _role_actions(cfn, roles["WebsocketMessage"])
    assert not [a for a in message if a.startswith(("dynamodb:", "sqs:", "secretsmanager:", "execute-api:"))]
    fanout = _role_actions(cfn, roles["PushLiveUpdates"])
    assert _data_actions(fanout) == {"dynamodb:Query": connections, "dynamodb:DeleteItem": connections}
    assert fanout["dynamodb:GetRecords"] == [{"Fn::GetAtt": ["AuditTable", "StreamArn"]}]
    prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebsocketAPI}/${WebsocketAPIStage}"
    assert fanout["execute-api:ManageConnections"] == [
        {"Fn::Sub": f"{prefix}/POST/@connections/*"}, {"Fn::Sub": f"{prefix}/DELETE/@connections/*"}]  # fmt: skip
    others = [role for function, role in roles.items() if function != "PushLiveUpdates"]
    assert not [r for r in others if "execute-api:ManageConnections" in _role_actions(cfn, r)]
    env = {f: resources[f]["Properties"]["Environment"]["Variables"] for f in roles}
    assert env["PushLiveUpdates"]["WEBSOCKET_MANAGEMENT_ENDPOINT"] == {
        "Fn::Sub": "https://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${WebsocketAPIStage}"
    }
    assert env["WebsocketConnect"]["JWT_SECRET_ARN"] == {"Ref": "JwtSecret"}
    for function in ("WebsocketConnect", "WebsocketDisconnect", "PushLiveUpdates"):
        assert env[function]["CONNECTIONS_TABLE"] == {"Ref": "ConnectionsTable"}, function


def _assert_webhook_roles(cfn: dict[str, Any], roles: dict[str, str]) -> None:
    endpoints, deliveries = ({"Fn::GetAtt": [t, "Arn"]} for t in ("WebhooksTable", "WebhookDeliveriesTable"))
    queue = {"Fn::GetAtt": ["WebhookDeliveryQueue", "Arn"]}
    fan_out = _role_actions(cfn, roles["FanOutWebhooks"])
    # One Query of the workspace's endpoints, a conditional put (and on a replay, a read) per delivery.
    assert _data_actions(fan_out) == {"dynamodb:Query": [endpoints], "dynamodb:PutItem": [deliveries],
                                      "dynamodb:GetItem": [deliveries]}  # fmt: skip
    assert fan_out["dynamodb:GetRecords"] == [{"Fn::GetAtt": ["AuditTable", "StreamArn"]}]
    assert fan_out["sqs:SendMessage"] == [queue, {"Fn::GetAtt": ["WebhookFanOutDeadLetterQueue", "Arn"]}]
    deliver = _role_actions(cfn, roles["DeliverWebhooks"])
    assert _data_actions(deliver) == {"dynamodb:GetItem": [endpoints, deliveries],
                                      "dynamodb:UpdateItem": [endpoints, deliveries]}  # fmt: skip
    assert {a for a, r in deliver.items() if a.startswith("sqs:")} == {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
        "sqs:SendMessage"}  # fmt: skip
    assert all(r == [queue] for a, r in deliver.items() if a.startswith("sqs:"))


def test_iam_names_each_table_and_the_secret(cfn: dict[str, Any]) -> None:
    statements = [
        statement
        for role in _of_type(cfn, "AWS::IAM::Role")
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    data = [s for s in statements if any(str(a).startswith("dynamodb:") and "Stream" not in a and "Records" not in a
                                         and "ShardIterator" not in a for a in s["Action"])]  # fmt: skip
    assert data, "no DynamoDB permissions: PynamoDB's calls need them named explicitly"
    for statement in data + [s for s in statements if any(str(a).startswith("secretsmanager:") for a in s["Action"])]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources, statement
    table_refs = json.dumps(data)
    for table in (
        "IdempotencyTable",
        "UsersTable",
        "ContactsTable",
        "NotesTable",
        "RateLimitsTable",
        "WorkspacesTable",
        "MembershipsTable",
        "SearchTable",
        "ContactEmailsTable",
        "DeletionMarksTable",
        "AuditTable",
        "ConnectionsTable",
        "WebhooksTable",
        "WebhookDeliveriesTable",
    ):
        assert table in table_refs


def test_no_role_can_change_or_delete_an_audit_entry(cfn: dict[str, Any]) -> None:
    """The audit log is append-only: only the change-event consumers put entries (conditionally,
    by event id); the API role only queries; no role may update or delete one (#17)."""
    audit_arns = ("AuditTable.Arn", '"AuditTable", "Arn"')
    allowed: dict[str, set[str]] = {}
    for name, resource in cfn["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                targets = json.dumps(statement["Resource"])
                if any(arn in targets for arn in audit_arns) and "StreamArn" not in targets:
                    allowed.setdefault(name, set()).update(statement["Action"])
    forbidden = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:*", "*"}
    assert all(not actions & forbidden for actions in allowed.values()), allowed
    writers = sorted(name for name, actions in allowed.items() if "dynamodb:PutItem" in actions)
    assert writers == ["IndexContactsRole", "IndexNotesRole"]
    assert allowed["ApiHandlerRole"] == {"dynamodb:Query"}


def test_functions_arm64_sized_and_no_secret_in_clear(cfn: dict[str, Any]) -> None:
    functions = {name: r["Properties"] for name, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == {
        "APIHandler",
        "JwtAuth",
        "NormalizeNotes",
        "PurgeWorkspaces",
        "IndexContacts",
        "IndexNotes",
        "WebsocketConnect",
        "WebsocketMessage",
        "WebsocketDisconnect",
        "PushLiveUpdates",
        "FanOutWebhooks",
        "DeliverWebhooks",
    }
    for props in functions.values():
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["MemorySize"] >= 512 and props["Timeout"] >= 5
        env = props["Environment"]["Variables"]
        assert "JWT_SECRET" not in env
    assert functions["APIHandler"]["Environment"]["Variables"]["JWT_SECRET_ARN"] == {"Ref": "JwtSecret"}
    assert functions["NormalizeNotes"]["ReservedConcurrentExecutions"] >= 1
    assert functions["PurgeWorkspaces"]["ReservedConcurrentExecutions"] >= 1
    for function in ("APIHandler", "IndexContacts", "IndexNotes"):  # the search table's users
        assert functions[function]["Environment"]["Variables"]["SEARCH_TABLE"] == {"Ref": "SearchTable"}
    for function in ("IndexContacts", "IndexNotes"):
        assert functions[function]["ReservedConcurrentExecutions"] >= 1
    secrets = _of_type(cfn, "AWS::SecretsManager::Secret")
    assert len(secrets) == 1 and "GenerateSecretString" in secrets[0]["Properties"]
    assert "SecretString" not in secrets[0]["Properties"]


def test_bundle_leaves_out_what_the_runtime_provides(built: tuple[str, Bundle]) -> None:
    bundle = built[1]
    with zipfile.ZipFile(bundle.zip_path) as archive:
        tops = {name.split("/", 1)[0] for name in archive.namelist()}
        assert {"app.py", "chalicelib", "pynamodb", "pydantic_core"} <= tops
        assert not tops & {"botocore", "boto3", "s3transfer"}
        assert "chalicelib/static/swagger-ui/swagger-ui-bundle.js" in archive.namelist()
        assert any("aarch64" in name for name in archive.namelist() if name.endswith(".so"))
    assert bundle.removed_bytes > 10_000_000
    assert bundle.zipped_bytes < 15_000_000  # about 6 MB of it is the bytecode below


def test_bundle_ships_bytecode_that_lambda_uses_as_is(built: tuple[str, Bundle], tmp_path: Path) -> None:
    """Every module has its .pyc (Lambda cannot write one); unchecked, so it is used as shipped."""
    with zipfile.ZipFile(built[1].zip_path) as archive:
        names = set(archive.namelist())
        sources = {n for n in names if n.endswith(".py") and not n.startswith("chalicelib/static/")}
        compiled = {n for n in names if n.endswith(".pyc")}
        for module in ("app.py", "chalicelib/store.py", "pydantic/main.py", "pynamodb/models.py"):
            assert importlib.util.cache_from_source(module) in compiled
        assert len(compiled) >= 0.95 * len(sources)
        assert all(importlib.util.source_from_cache(n) in names for n in compiled)  # none stale or foreign
        # Lambda does not run as the files' owner: everything must be readable by all.
        assert all((info.external_attr >> 16) & 0o444 == 0o444 for info in archive.infolist())
        pyc = archive.read("chalicelib/__pycache__/normalize.cpython-311.pyc")
        assert pyc[:4] == importlib.util.MAGIC_NUMBER and int.from_bytes(pyc[4:8], "little") == 0b01
        assert marshal.loads(pyc[16:]).co_filename == "/var/task/chalicelib/normalize.py"  # noqa: S302 (ours)
        archive.extractall(tmp_path, [n for n in names if n.startswith("chalicelib/") and "static" not in n])
    # Break the source: the import still works, because Python runs the shipped bytecode.
    source = tmp_path / "chalicelib" / "normalize.py"
    source.write_text(source.read_text() + "\nraise SystemExit(3)\n")
    check = "import chalicelib.normalize as n; print(n.normalize_text('a  b'))"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "a b"), done.stderr


def test_bytecode_is_refused_for_another_runtime() -> None:
    function = {"Type": "AWS::Serverless::Function", "Properties": {"Runtime": "python3.12"}}
    with pytest.raises(RuntimeError, match=r"python3\.12"):
        check_runtime({"Resources": {"APIHandler": function}})


def test_the_template_is_deployed_through_s3_as_its_size_requires(built: tuple[str, Bundle]) -> None:
    """CloudFormation takes a template inline only up to 51,200 bytes, and from S3 up to 1 MB;
    `make deploy` must hand it over through the bucket once it is larger."""
    size = len(json.dumps(json.loads(built[1].template.read_text()), separators=(",", ":")))
    assert size < 1_000_000
    recipe = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    deploy = recipe[recipe.index("aws cloudformation deploy") :].split("\n\n")[0]
    if size > 51_200:
        assert "--s3-bucket $(BUCKET)" in deploy


def test_packaging_needs_no_aws_credentials(built: tuple[str, Bundle]) -> None:
    """Every stage here is packaged with no credentials to be found anywhere (`_packaged`),
    so any AWS call packaging made would have failed it: it makes none."""
    _, bundle = built
    assert bundle.zip_path.is_file() and bundle.template.is_file()


def test_import_files_reach_the_function_byte_for_byte(cfn: dict[str, Any]) -> None:
    """CSV and vCard bodies are binary media types on the gateway, so a UTF-16 or Windows-1252
    file arrives base64-encoded and unaltered (as text, API Gateway would pass it on as UTF-8).
    The app's own binary types stay Chalice's: its CSV and vCard exports answer as text, so a
    client needs no particular Accept header to read them."""
    from app import app
    from chalicelib.api.imports import FORMAT_OF

    (api,) = _of_type(cfn, "AWS::ApiGateway::RestApi")
    binary = api["Properties"]["Body"]["x-amazon-apigateway-binary-media-types"]
    files = [media for media, fmt in FORMAT_OF.items() if fmt != "json"]
    assert set(files) <= set(binary)
    assert set(app.api.binary_types) <= set(binary)  # Chalice's own, kept
    assert not set(files) & set(app.api.binary_types)
    assert "application/json" not in binary
