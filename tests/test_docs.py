"""OpenAPI 3.1 from the code, the committed export, Chalice's Swagger 2.0, and the /docs page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from chalicelib.openapi import OPERATIONS, Operation, build_document
from tests.conftest import API, ROOT, Api, problem


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from app import app

    return build_document(app.routes)


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_api_route_and_method_is_documented(document: dict[str, Any]) -> None:
    from app import app

    undocumented = ("method_not_allowed", "options")  # 405s and OPTIONS (CORS preflights): not operations
    api_routes = {
        (path, method)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
        if path.startswith(API) and entry.view_name not in undocumented
    }
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    assert documented == api_routes == set(OPERATIONS)


TAGS = {"auth", "contacts", "notes", "search", "service", "workspaces", "import and export", "audit", "webhooks"}


def test_operations_describe_inputs_outputs_and_problems(document: dict[str, Any]) -> None:
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op["tags"] and op["tags"][0] in TAGS, where
            success = [code for code in op["responses"] if code.startswith("2")]
            assert len(success) == 1 or (success == ["200", "207"] and path == API + "/contacts/batch"), where
            problems = {int(code) for code in op["responses"] if int(code) >= 400}
            assert 429 in problems, where
            if method == "get" and op["security"]:  # every authenticated read revalidates (#16)
                assert "If-None-Match" in [p["name"] for p in op["parameters"]], where
                assert "content" not in op["responses"]["304"], where
                assert "ETag" in op["responses"]["304"]["headers"] and "ETag" in op["responses"]["200"]["headers"]
            else:
                assert "304" not in op["responses"], where
            for code in problems:
                content = op["responses"][str(code)]["content"]
                assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
            if "{" in path:
                assert 404 in problems, where
                assert all(p["in"] != "path" or p["required"] for p in op["parameters"])
            if "requestBody" in op:
                assert {400, 413, 415, 422} <= problems, where
                media = next(iter(op["requestBody"]["content"].values()))
                assert media["example"], where
            if op["security"]:
                assert 401 in problems, where


EXPECTED_OPERATION_IDS = {
    ("get", "/health"): "getHealth",
    ("post", "/auth/register"): "register",
    ("post", "/auth/token"): "signIn",
    ("get", "/auth/me"): "getCurrentUser",
    ("post", "/auth/logout"): "signOut",
    ("post", "/auth/password"): "changePassword",
    ("post", "/contacts"): "createContact",
    ("get", "/contacts"): "listContacts",
    ("get", "/contacts/{contact_id}"): "getContact",
    ("put", "/contacts/{contact_id}"): "replaceContact",
    ("patch", "/contacts/{contact_id}"): "updateContact",
    ("delete", "/contacts/{contact_id}"): "deleteContact",
    ("post", "/contacts/{contact_id}/notes"): "addNoteToContact",
    ("get", "/contacts/{contact_id}/notes"): "listContactNotes",
    ("post", "/notes"): "createNote",
    ("get", "/notes/{note_id}"): "getNote",
    ("put", "/notes/{note_id}"): "replaceNote",
    ("patch", "/notes/{note_id}"): "updateNote",
    ("delete", "/notes/{note_id}"): "deleteNote",
    ("post", "/workspaces"): "createWorkspace",
    ("get", "/workspaces"): "listWorkspaces",
    ("get", "/workspaces/{workspace_id}"): "getWorkspace",
    ("patch", "/workspaces/{workspace_id}"): "updateWorkspace",
    ("delete", "/workspaces/{workspace_id}"): "deleteWorkspace",
    ("get", "/workspaces/{workspace_id}/members"): "listMembers",
    ("post", "/workspaces/{workspace_id}/members"): "addMember",
    ("patch", "/workspaces/{workspace_id}/members/{user_id}"): "updateMember",
    ("delete", "/workspaces/{workspace_id}/members/{user_id}"): "removeMember",
    ("get", "/search"): "search",
    ("post", "/imports"): "importContacts",
    ("post", "/contacts/batch"): "batchContacts",
    ("get", "/exports"): "exportContacts",
    ("get", "/audit"): "listAuditEvents",
    ("get", "/contacts/{contact_id}/history"): "getContactHistory",
    ("post", "/webhooks"): "createWebhook",
    ("get", "/webhooks"): "listWebhooks",
    ("get", "/webhooks/{webhook_id}"): "getWebhook",
    ("patch", "/webhooks/{webhook_id}"): "updateWebhook",
    ("delete", "/webhooks/{webhook_id}"): "deleteWebhook",
    ("post", "/webhooks/{webhook_id}/test"): "testWebhook",
    ("get", "/webhooks/{webhook_id}/deliveries"): "listWebhookDeliveries",
}


def test_operation_ids_are_unique_lower_camel_case_names(document: dict[str, Any]) -> None:
    """They name the functions of generated clients: chosen, not derived from the path."""
    ids = {
        (method, path.removeprefix(API)): op["operationId"]
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }
    assert all(re.fullmatch(r"[a-z][a-zA-Z0-9]*", name) for name in ids.values()), ids
    assert len(set(ids.values())) == len(ids)
    assert ids == EXPECTED_OPERATION_IDS


@pytest.mark.parametrize(
    ("methods", "operation_id", "refusal"),
    [
        (["GET"], "getHealth", "already taken by GET /api/v1/health"),
        (["GET"], "get_health_again", "not a lowerCamelCase name"),
        (["GET"], "GetHealthAgain", "not a lowerCamelCase name"),
        (["GET"], "", "not a lowerCamelCase name"),
        (["PUT", "PATCH"], "changeHealth", "names 2 methods"),
    ],
)
def test_registration_refuses_a_bad_or_taken_operation_id(methods: list[str], operation_id: str, refusal: str) -> None:
    """What a blueprint's import would raise, had a route been declared so; nothing is registered."""
    from app import app
    from chalicelib.api.routing import ApiBlueprint

    before = dict(OPERATIONS)
    blueprint = ApiBlueprint(__name__)
    with pytest.raises(ValueError, match=refusal):
        blueprint.operation("/health-again", methods, Operation("Again", "service", operation_id=operation_id))(
            lambda: None
        )
    assert blueprint._deferred_registrations == []
    assert before == OPERATIONS
    assert API + "/health-again" not in app.routes


def test_request_bodies_list_only_what_the_server_reads(document: dict[str, Any]) -> None:
    """POST and PUT take JSON; PATCH a merge patch (the server reads application/json too, which
    the document does not list: see chalicelib/openapi.py on openapi-python-client)."""
    bodies = {
        (method, path): list(op["requestBody"]["content"])
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    }
    for (method, path), media_types in bodies.items():
        if path == API + "/auth/token":
            assert media_types == ["application/x-www-form-urlencoded"]
        elif path == API + "/imports":  # a file (CSV, vCard, this API's JSON export): see chalicelib/api/imports.py
            assert media_types == ["application/octet-stream"]
        elif method == "patch":
            assert media_types == ["application/merge-patch+json"], path
        else:
            assert media_types == ["application/json"], (method, path)
    assert {method for method, _ in bodies} == {"post", "put", "patch"}


def test_specific_problem_statuses(document: dict[str, Any]) -> None:
    paths = document["paths"]

    def statuses(path: str, method: str) -> set[int]:
        return {int(c) for c in paths[API + path][method]["responses"]}

    assert 409 in statuses("/auth/register", "post")
    assert 401 in statuses("/auth/token", "post")
    assert {412, 404} <= statuses("/contacts/{contact_id}", "put")
    assert {400, 422} <= statuses("/contacts", "get")  # cursor, limit
    assert statuses("/health", "get") == {200, 429, 503}  # 503: the store is down


def test_security_schemes_and_public_routes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    flow = schemes["OAuth2PasswordBearer"]["flows"]["password"]
    assert flow["tokenUrl"] == flow["refreshUrl"] == "/api/v1/auth/token"
    assert schemes["BearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    public = {(p, m) for p, ops in document["paths"].items() for m, op in ops.items() if op["security"] == []}
    # Sign-out's credential is the refresh token in its body.
    auth = {(API + path, "post") for path in ("/auth/register", "/auth/token", "/auth/logout")}
    assert public == {(API + "/health", "get"), *auth}
    token = document["paths"][API + "/auth/token"]["post"]["requestBody"]["content"]
    assert list(token) == ["application/x-www-form-urlencoded"]


def test_schemas_publish_what_the_server_enforces(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    contact_in = schemas["ContactIn"]
    assert contact_in["additionalProperties"] is False
    assert contact_in["required"] == ["first_name"]
    assert contact_in["properties"]["first_name"]["maxLength"] == 100
    assert schemas["ContactPatch"]["minProperties"] == 1
    assert schemas["NoteIn"]["properties"]["body"]["maxLength"] == 100_000
    note_out = schemas["NoteOut"]["properties"]
    for field in ("original_body", "tags", "processing_status", "processed_at", "normalizer_version"):
        assert field in note_out
    assert "note_body" in document["info"]["description"]  # the alias table


def test_committed_export_matches_the_code() -> None:
    from devtools.openapi_export import TARGET, render

    assert TARGET.read_text(encoding="utf-8") == render(), "openapi.json is stale: run `make openapi`"


def test_chalice_swagger_export_still_works() -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    chalice = str(Path(sys.executable).parent / "chalice")
    command = [chalice, "--project-dir", str(ROOT), "generate-models", "--stage", "local"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=True)
    swagger = json.loads(done.stdout)
    validate(swagger)
    assert swagger["swagger"] == "2.0"
    assert "/api/v1/contacts/{contact_id}" in swagger["paths"]


# ---- the page, over the test client ---------------------------------------------------------


def test_docs_page_loads_only_local_files_under_a_strict_csp(anon: Api) -> None:
    page = anon.client.http.get("/docs")
    assert page.status_code == 200
    html = page.body.decode()
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert "<script>" not in html  # no inline script
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset, kind in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                        ("docs-init.js", "text/javascript"), ("oauth2-redirect.html", "text/html")):  # fmt: skip
        reply = anon.client.http.get(f"/docs/{asset}")
        assert reply.status_code == 200, asset
        assert reply.headers["Content-Type"].startswith(kind)
        assert len(reply.body) > 100
    init = anon.client.http.get("/docs/docs-init.js").body.decode()
    assert "persistAuthorization: true" in init


def test_unknown_docs_asset_is_a_404_problem(anon: Api) -> None:
    reply = anon.client.http.get("/docs/../app.py")
    assert reply.status_code in (403, 404)
    problem_reply = anon.client.http.get("/docs/secrets.txt")
    assert problem_reply.status_code == 404
    assert problem_reply.headers["Content-Type"] == "application/problem+json"


def test_served_document_is_the_generated_one(anon: Api, document: dict[str, Any]) -> None:
    reply = anon.client.http.get("/openapi.json")
    assert reply.status_code == 200
    assert json.loads(reply.body) == document


def test_every_documented_problem_shape_matches_a_real_one(alice: Api) -> None:
    body = problem(alice.get("/contacts/01M8FP1CYTGFW5FGC7TXSJ3ETH"), 404)
    from chalicelib.schemas import Problem

    Problem.model_validate(body)


def test_behind_an_api_gateway_stage_the_document_points_under_it(anon: Api) -> None:
    """On the execute-api URL every path sits under the stage (/api): so must the spec's server and token URL."""
    from chalice.local import LambdaContext

    from app import app

    event = {
        "resource": "/openapi.json", "path": "/openapi.json", "httpMethod": "GET", "headers": {},
        "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": "/openapi.json", "httpMethod": "GET", "path": "/api/openapi.json",
                           "stage": "api", "requestId": "r", "identity": {"sourceIp": "203.0.113.5"}},
    }  # fmt: skip
    reply = app(event, LambdaContext("api_handler", 512))
    document = json.loads(reply["body"])
    assert document["servers"] == [{"url": "/api", "description": "this API Gateway stage"}]
    flow = document["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]
    assert flow["tokenUrl"] == flow["refreshUrl"] == "/api/api/v1/auth/token"
    assert "/api/v1/contacts" in document["paths"]
    local = json.loads(anon.client.http.get("/openapi.json").body)
    assert local["servers"][0]["url"] == "/"
