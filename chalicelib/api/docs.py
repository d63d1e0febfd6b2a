"""The docs: the OpenAPI document and the Swagger UI page that reads it (not API operations)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from chalice import Blueprint
from chalice.app import Response

from chalicelib import docs, openapi
from chalicelib.errors import NotFound
from chalicelib.web import handle_errors

docs_api = Blueprint(__name__)


def _public_get(path: str) -> Callable[..., Any]:
    """A public GET outside the API's own operations (not in the OpenAPI document)."""

    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        docs_api.route(path, methods=["GET"], content_types=["*/*"])(
            handle_errors(view, lambda: docs_api.current_request)
        )
        return view

    return register


@lru_cache(maxsize=4)
def openapi_document(base: str = "") -> str:
    return json.dumps(
        openapi.with_base_path(openapi.build_document(docs_api.current_app.routes), base), ensure_ascii=False
    )


def _base_path() -> str:
    """The API Gateway stage prefix this request came through ("/api"), or "" (local, custom domain)."""
    context = docs_api.current_request.context
    stage = str(context.get("stage") or "")
    return f"/{stage}" if stage and str(context.get("path") or "").startswith(f"/{stage}/") else ""


@_public_get("/openapi.json")
def openapi_json() -> Response:
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json", "Cache-Control": "no-cache"}
    return Response(body=openapi_document(_base_path()), headers=headers)


@_public_get("/docs")
def docs_page() -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": docs.CONTENT_SECURITY_POLICY,
    }
    return Response(body=docs.PAGE, headers=headers)


@_public_get("/docs/{name}")
def docs_asset(name: str) -> Response:
    found = docs.asset(name)
    if found is None:
        raise NotFound("No such docs asset.")
    text, content_type = found
    headers: dict[str, str | list[str]] = {
        "Content-Type": content_type,
        "Cache-Control": "public, max-age=86400",
        "Content-Security-Policy": docs.CONTENT_SECURITY_POLICY,
    }
    return Response(body=text, headers=headers)
