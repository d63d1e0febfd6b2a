"""OpenAPI 3.1 generated from Chalice's route table and the pydantic models.

Each view registers an `Operation` (what it reads, answers, and which problems it can
return); `build_document` walks `app.routes` and turns every (path, method) into an
operation object, with component schemas produced by pydantic. Written by hand because
Chalice only exports Swagger 2.0 without schemas, and no maintained library bridges
Chalice's route table to pydantic models.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from chalicelib.ids import ULID_PATTERN
from chalicelib.roles import Role
from chalicelib.schemas import BODY_ALIASES, Problem
from chalicelib.web import FORM_TYPES, IF_MATCH_PATTERN, MERGE_PATCH, json_media_types

TITLES = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "Forbidden: your role does not allow it, or not your workspace",
    404: "Not found (or another user's)",
    409: "Conflict",
    412: "If-Match names an old version",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid or unknown fields",
    429: "Rate limited (Retry-After says when)",
    503: "Temporarily unavailable (Retry-After says when)",
}
SECURITY: list[dict[str, list[str]]] = [{"OAuth2PasswordBearer": []}, {"BearerAuth": []}]
# operationIds name the functions of generated clients (createContact): lowerCamelCase verbs.
OPERATION_ID_PATTERN = r"^[a-z][a-zA-Z0-9]*$"


@dataclass(frozen=True)
class Operation:
    """What one view reads and answers, for the OpenAPI document."""

    summary: str
    tag: str
    status: int = 200
    response: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_media: Literal["json", "form", "file"] = "json"
    # body_media "file": the body is a file in one of these media types (no model), e.g. POST /imports.
    file_types: tuple[str, ...] = ()
    query: type[BaseModel] | None = None
    public: bool = False
    etag: bool = False  # answers an ETag (the item's version)
    if_match: bool = False  # accepts If-Match (412 when stale)
    # Accepts Idempotency-Key (chalicelib.idempotency): a repeat answers as the first did.
    idempotent: bool = False
    problems: tuple[int, ...] = ()
    partial: bool = False  # also answers 207 Multi-Status, with the same schema: some items failed (a batch)
    # The least role in the token's workspace that may call it (chalicelib.roles); checked
    # from the token's claims before the view runs (no DynamoDB call), a 403 below it.
    role: Role = "viewer"
    description: str = ""  # longer than the summary, when the operation has rules to tell
    # Media types the success answer may have besides JSON (`response`), each a text body: an
    # export's text/csv. JSON stays first, the type openapi-python-client types the answer by.
    also_as: tuple[str, ...] = ()
    # Headers the success answer may carry besides every answer's: (name, description).
    success_headers: tuple[tuple[str, str], ...] = ()
    # Required, so that no route is published under a name derived from its path, which
    # changes whenever the path does and reads badly in clients (post_api_v1_contacts).
    operation_id: str = field(kw_only=True)

    def revalidates(self, method: str) -> bool:
        """Whether the operation answers conditional requests (ETag, If-None-Match, 304): every
        authenticated read (chalicelib.web.conditional_get)."""
        return method.upper() == "GET" and not self.public

    def problem_statuses(self, path: str) -> list[int]:
        statuses = set(self.problems) | {429, 503}  # 503: the store is unreachable or busy
        if not self.public:
            statuses.add(401)
        if self.role != "viewer":
            statuses.add(403)
        if self.body is not None or self.body_media == "file":
            statuses |= {400, 413, 415, 422}
        if "{" in path:
            statuses.add(404)
        if self.query is not None:
            statuses |= {400, 422}
        if self.if_match:
            statuses |= {400, 412}
        if self.idempotent:
            statuses |= {400, 409, 422}  # a malformed key; the key's first request running; reused
        return sorted(statuses)


OPERATIONS: dict[tuple[str, str], Operation] = {}


def register(path: str, methods: list[str], operation: Operation) -> None:
    """Publish one method's operation. Raises (so the import of app.py fails) on an operationId
    not in OPERATION_ID_PATTERN, already taken, or given to more than one method."""
    name = operation.operation_id
    if not re.fullmatch(OPERATION_ID_PATTERN, name):
        raise ValueError(f"operationId {name!r} is not a lowerCamelCase name ({OPERATION_ID_PATTERN})")
    taken = {op.operation_id: f"{method} {where}" for (where, method), op in OPERATIONS.items()}
    if name in taken:
        raise ValueError(f"operationId {name!r} is already taken by {taken[name]}")
    if len(methods) != 1:
        raise ValueError(f"operationId {name!r} names {len(methods)} methods of {path}: give each its own Operation")
    OPERATIONS[(path, methods[0].upper())] = operation


def _models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"Problem": Problem}
    for op in OPERATIONS.values():
        for model in (op.response, op.body):
            if model is not None:
                found[model.__name__] = model
    return list(found.values())


def _components() -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema  # only /openapi.json needs it, not every cold start

    pairs = [(model, "serialization") for model in _models()]
    pairs += [(op.body, "validation") for op in OPERATIONS.values() if op.body is not None]
    _, schema = models_json_schema(pairs, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    return dict(schema.get("$defs", {}))


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _example(model: type[BaseModel]) -> dict[str, Any]:
    """A request example from each field's first example."""
    return {name: info.examples[0] for name, info in model.model_fields.items() if info.examples}


ITEM_ETAG = 'The item\'s ETag, e.g. "01J9Z3QK8V5N2W4X6Y7Z8A9B0C-3" (its id and version): send it back in If-Match.'
PAGE_ETAG = "A weak ETag over this page: send it back in If-None-Match to get 304 while the page is unchanged."
CACHE_CONTROL = "private, no-cache: a client may keep the answer, but must revalidate it (If-None-Match)."


def _headers(op: Operation, status: int, method: str) -> dict[str, Any]:
    text = {"schema": {"type": "string"}}
    headers: dict[str, Any] = {
        "X-Request-Id": {**text, "description": "The id this request is logged under."},
        "RateLimit-Policy": {
            **text,
            "description": 'Quota policy, e.g. "default";q=60;w=6 (draft-ietf-httpapi-ratelimit-headers).',
        },
        "RateLimit": {**text, "description": 'Where the caller stands, e.g. "default";r=57;t=1.'},
    }
    if status in (429, 503) or (op.idempotent and status == 409):
        headers["Retry-After"] = {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds to wait."}
    if status == 401:
        headers["WWW-Authenticate"] = {**text, "description": "Bearer"}
    if op.etag and (200 <= status < 300 or status == 304):
        headers["ETag"] = {**text, "description": ITEM_ETAG}
    elif op.revalidates(method) and status in (200, 304):
        headers["ETag"] = {**text, "description": PAGE_ETAG}
    if op.revalidates(method) and status in (200, 304):
        headers["Cache-Control"] = {**text, "description": CACHE_CONTROL}
        headers["Vary"] = {**text, "description": "Authorization (and Origin when CORS is on)."}
    if 200 <= status < 300:
        headers.update({name: {**text, "description": description} for name, description in op.success_headers})
    if op.idempotent and 200 <= status < 300:
        headers["Idempotent-Replayed"] = {
            "schema": {"type": "string", "enum": ["true"]},
            "description": "Present when this is the stored answer to an earlier request with this Idempotency-Key.",
        }
    return headers


def _parameters(path: str, op: Operation, method: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": "A ULID issued by this API.",
            "schema": {"type": "string", "pattern": ULID_PATTERN},
        }
        for name in re.findall(r"{(\w+)}", path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema()
        for name, prop in schema["properties"].items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            if "anyOf" in prop:  # Optional[str]: a query parameter is simply absent instead
                prop = next(p for p in prop["anyOf"] if p.get("type") != "null") | {
                    k: v for k, v in prop.items() if k not in ("anyOf", "default")
                }
            required = name in schema.get("required", [])
            if "x-json-content" in prop:  # a JSON value (e.g. POST /imports' mapping)
                content = {"application/json": {"schema": prop.pop("x-json-content")}}
                params.append({"name": name, "in": "query", "required": required, "content": content, **prop})
                params[-1].pop("type", None)
                params[-1].pop("maxLength", None)
                continue
            params.append({"name": name, "in": "query", "required": required, "schema": prop})
    if op.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": (
                    "A key of the client's choosing (a UUID, say) that makes a retry safe: a repeat with the same "
                    "key and request within 24 hours gets the first answer again (Idempotent-Replayed: true) and "
                    "writes nothing; the same key with another request is a 422; while the first still runs, a 409."
                ),
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7E]+$"},
            }
        )
    if op.if_match:
        params.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": (
                    "Only write if the item is still at this version: its ETag, or *; 412 if not (or if it "
                    'is another item\'s). Deprecated, accepted for one more release: the bare version ("3").'
                ),
                "schema": {"type": "string", "pattern": IF_MATCH_PATTERN},
            }
        )
    if op.revalidates(method):
        params.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "ETags you hold (comma-separated), or *: 304 with no body if one still matches.",
                "schema": {"type": "string"},
            }
        )
    return params


def _documented_media_types(method: str, op: Operation) -> list[str]:
    """The media types the document lists for a body: those the server accepts, except PATCH.

    The server reads a PATCH body sent as application/json or as application/merge-patch+json
    (web.json_media_types). Listing both breaks openapi-python-client (0.29.1; its issue #1276):
    it cannot tell two media types of one schema apart, so the body becomes optional, the
    first type is dead code (the last always wins), and the module fails to import (NameError:
    Unset) when the operation has no optional parameter. The merge-patch type alone keeps the
    body required and names what the server does with it; the description mentions the other.
    """
    if op.body_media == "form":
        return FORM_TYPES
    return [MERGE_PATCH] if method == "PATCH" else json_media_types(method)


FILE_EXAMPLES: dict[str, Any] = {
    "application/octet-stream": "First Name,Last Name,E-mail Address\r\nJohn,Doe,john@example.com\r\n",
    "text/csv": "First Name,Last Name,E-mail Address,Notes\r\nJohn,Doe,john@example.com,Met at the conference\r\n",
    "text/vcard": "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;John;;;\r\nFN:John Doe\r\nEMAIL;TYPE=INTERNET:john@example.com"
    "\r\nEND:VCARD\r\n",
    "application/json": {
        "format": "contact-notes",
        "version": 1,
        "contacts": [{"first_name": "John", "email": "john@example.com", "notes": [{"original_body": "Met him."}]}],
    },
}


def _file_body(op: Operation) -> dict[str, Any]:
    def schema(media: str) -> dict[str, Any]:
        if media == "application/json":
            return {"type": "object"}
        return {"type": "string", "format": "binary"} if media == "application/octet-stream" else {"type": "string"}

    content = {media: {"schema": schema(media), "example": FILE_EXAMPLES[media]} for media in op.file_types}
    return {"required": True, "content": content}


def _request_body(method: str, op: Operation) -> dict[str, Any] | None:
    if op.body_media == "file":
        return _file_body(op)
    if op.body is None:
        return None
    example = _example(op.body)
    content = {media: {"schema": _ref(op.body), "example": example} for media in _documented_media_types(method, op)}
    body: dict[str, Any] = {"required": True, "content": content}
    if method == "PATCH":
        body["description"] = (
            "A JSON merge patch (RFC 7396): the fields sent change, the rest stay; null removes an optional field. "
            "Also accepted as application/json."
        )
    return body


def _responses(path: str, method: str, op: Operation) -> dict[str, Any]:
    success: dict[str, Any] = {
        "description": "Success",
        "headers": _headers(op, op.status, method),
    }
    if op.response is not None:
        success["content"] = {"application/json": {"schema": _ref(op.response)}}
        success["content"].update({media: {"schema": {"type": "string"}} for media in op.also_as})
    responses: dict[str, Any] = {str(op.status): success}
    if op.partial:
        responses["207"] = {**success, "description": "Some items failed: each result says how"}
    if op.revalidates(method):
        responses["304"] = {
            "description": "Not modified: the ETag you sent still matches",
            "headers": _headers(op, 304, method),
        }
    for status in op.problem_statuses(path):
        responses[str(status)] = {
            "description": TITLES[status],
            "headers": _headers(op, status, method),
            "content": {"application/problem+json": {"schema": _ref(Problem)}},
        }
    return responses


def _operation(path: str, method: str, op: Operation) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        **({"description": op.description} if op.description else {}),
        "tags": [op.tag],
        "parameters": _parameters(path, op, method),
        "responses": _responses(path, method, op),
        "security": [] if op.public else SECURITY,
    }
    body = _request_body(method, op)
    if body is not None:
        result["requestBody"] = body
    return result


DESCRIPTION = f"""Contacts and the notes you take about them.

Sign in with **Authorize**: the password flow exchanges a username and password for a bearer
token at `/api/v1/auth/token`; or paste a token. Every error is an RFC 9457 problem
(`application/problem+json`). Every response carries `RateLimit-Policy` and `RateLimit`;
a 429 carries `Retry-After`.

**Note text aliases.** Note writes accept the text under `body` or any of
{", ".join(f"`{a}`" for a in BODY_ALIASES[1:])}, in any spelling that differs only in case or
camelCase/snake_case (`noteBody`, `NOTE_BODY`); the stored field is always `body`. Two of them
in one request is a 422 naming both. Notes are normalized asynchronously: `processing_status`
goes from `pending` to `processed` (or `failed`), `original_body` keeps the text as sent.
"""


def build_document(routes: dict[str, dict[str, Any]], version: str = "1.0.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document for every registered route."""
    paths: dict[str, Any] = {}
    for path in sorted(routes):
        for method in sorted(routes[path]):
            op = OPERATIONS.get((path, method))
            if op is None:
                continue  # not part of the API (the docs page and its assets)
            paths.setdefault(path, {})[method.lower()] = _operation(path, method, op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Contact Notes API", "version": version, "description": DESCRIPTION},
        "servers": [{"url": "/", "description": "this server"}],
        "tags": [
            {"name": "auth", "description": "Register, sign in, and who am I"},
            {"name": "contacts", "description": "People you keep notes about"},
            {"name": "notes", "description": "Notes on contacts, normalized after they are saved"},
            {"name": "workspaces", "description": "Workspaces, their members and roles"},
            {"name": "search", "description": "Contacts and notes by what they say"},
            {"name": "import and export", "description": "Files in (CSV, vCard, JSON) and out, and batches"},
            {"name": "webhooks", "description": "Signed change events sent to your endpoints (admins)"},
            {"name": "service", "description": "Health"},
        ],
        "paths": paths,
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "OAuth2PasswordBearer": {
                    "type": "oauth2",
                    "description": "Username and password for a bearer token (OAuth 2.0 password grant); "
                    "the refresh token in the answer renews it at the same URL (grant_type=refresh_token).",
                    "flows": {
                        "password": {"tokenUrl": "/api/v1/auth/token", "refreshUrl": "/api/v1/auth/token", "scopes": {}}
                    },
                },
                "BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }


def with_base_path(document: dict[str, Any], base: str) -> dict[str, Any]:
    """The document as seen through a path prefix (API Gateway's stage, e.g. "/api"): the
    server URL and the password flow's token and refresh URLs move under it; paths stay as they are."""
    if not base:
        return document
    moved = copy.deepcopy(document)
    moved["servers"] = [{"url": base, "description": "this API Gateway stage"}]
    flow = moved["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]
    flow["tokenUrl"] = base + flow["tokenUrl"]
    flow["refreshUrl"] = base + flow["refreshUrl"]
    return moved
