"""What every capability's blueprint shares: registering an operation (error boundary,
authorizer unless public, OpenAPI entry) and reading the request."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Blueprint
from chalice.app import Request, Response
from pydantic import BaseModel

from chalicelib import openapi
from chalicelib.api.gate import jwt_auth
from chalicelib.errors import Forbidden
from chalicelib.idempotency import Caller, idempotent
from chalicelib.openapi import Operation
from chalicelib.roles import OWNER, at_least
from chalicelib.runtime import settings
from chalicelib.schemas import PageQuery
from chalicelib.web import (
    conditional_get,
    etag,
    handle_errors,
    json_media_types,
    json_response,
    note_aliases_resolved,
    parse,
    read_json_object,
)

API = "/api/v1"
M = TypeVar("M", bound=BaseModel)


class ApiBlueprint(Blueprint):
    """A Chalice Blueprint whose routes live under /api/v1 and are described in OpenAPI."""

    def operation(
        self, path: str, methods: list[str], op: Operation, content_types: list[str] | None = None
    ) -> Callable[..., Any]:
        """Register a view under /api/v1: error boundary, authorizer unless public, OpenAPI entry."""

        def register(view: Callable[..., Response]) -> Callable[..., Response]:
            openapi.register(API + path, methods, op)  # first: a refused operation never becomes a route
            self.route(
                API + path,
                methods=methods,
                authorizer=None if op.public else jwt_auth,
                # On AWS the authorizer names the caller's usage-plan key (API key source AUTHORIZER).
                api_key_required=not op.public,
                content_types=content_types or default_content_types(methods),
            )(handle_errors(self._requiring(op, self._conditional(methods, op, view)), lambda: self.request))
            return view

        return register

    def _conditional(self, methods: list[str], op: Operation, view: Callable[..., Response]) -> Callable[..., Response]:
        """An authenticated read answers with an ETag, and 304 to an If-None-Match naming it.

        The view still runs (a 304 costs the read it answers for): a validator is only known
        once the item or page is read."""
        if not op.revalidates(methods[0]):
            return view

        @functools.wraps(view)
        def revalidated(**kwargs: Any) -> Response:
            return conditional_get(self.request, view(**kwargs))

        return revalidated

    def _requiring(self, op: Operation, view: Callable[..., Response]) -> Callable[..., Response]:
        """The view, refused with 403 when the token's role in its workspace is below the
        operation's. The role is the token's claim: no DynamoDB call (it may be up to one
        access-token lifetime old; see README, "Workspaces and roles"). Its role checked, an
        idempotent operation's view runs at most once per caller and Idempotency-Key."""
        if op.idempotent:
            view = idempotent(view, lambda: self.request, lambda: Caller(self.user(), self.owner()))
        if op.public or op.role == "viewer":
            return view  # every member may; nothing to check

        @functools.wraps(view)
        def guarded(**kwargs: Any) -> Response:
            if not at_least(self.role(), op.role):
                raise Forbidden(f"Your role in this workspace ({self.role()}) cannot do this; it needs {op.role}.")
            return view(**kwargs)

        return guarded

    @property
    def request(self) -> Request:
        return self.current_request

    def owner(self) -> str:
        """The workspace the token acts in (the data's owner)."""
        return str(self.request.context["authorizer"]["owner_id"])

    def user(self) -> str:
        return str(self.request.context["authorizer"]["user_id"])

    def role(self) -> str:
        """The caller's role in the token's workspace, as the token says.

        An authorizer answer cached (up to its TTL) from before roles existed has none; its
        token could only act in the caller's personal workspace, which the caller owns.
        """
        role = self.request.context["authorizer"].get("role")
        if role:
            return str(role)
        return OWNER if self.owner() == self.user() else ""

    def shared(self) -> bool:
        """Whether the token acts in a workspace other than the caller's personal one."""
        return self.owner() != self.user()

    def body(self, model: type[M]) -> M:
        return parse(model, read_json_object(self.request, settings().max_request_bytes))

    def note_body(self, model: type[M]) -> M:
        """A note body whose text may arrive under an alias (see schemas.BODY_ALIASES)."""
        return parse(model, note_aliases_resolved(read_json_object(self.request, settings().max_request_bytes)))

    def page_query(self) -> PageQuery:
        return self.query(PageQuery)

    def query(self, model: type[M]) -> M:
        """The query string read as `model` (422 naming #/query/<name> when invalid)."""
        params: dict[str, str] = dict(self.request.query_params or {})
        return parse(model, params, prefix="#/query")


def default_content_types(methods: list[str]) -> list[str]:
    """JSON (a merge patch too for PATCH) for methods that carry a body; anything for GET/DELETE,
    whose body is ignored. Chalice answers a type outside these with 415 before the view runs."""
    if not set(methods) & {"POST", "PUT", "PATCH"}:
        return ["*/*"]
    return list(dict.fromkeys(media for method in methods for media in json_media_types(method)))


def versioned(body: Any, status: int = 200) -> Response:
    """An item with its strong ETag (its id and version)."""
    return json_response(body, status, etag(body.id, body.version))


def no_content() -> Response:
    return Response(body="", status_code=204)
