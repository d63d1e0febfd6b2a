"""Search (#14): contacts and notes of the token's workspace by the words they hold."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.api.routing import ApiBlueprint
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.schemas import SearchPage, SearchQuery
from chalicelib.web import json_response

search_api = ApiBlueprint(__name__)


@search_api.operation(
    "/search",
    ["GET"],
    Operation(
        "Search contacts and notes",
        "search",
        response=SearchPage,
        query=SearchQuery,
        operation_id="search",
        description=(
            "Every term must match (AND). Best match first: whole words above prefixes, names above "
            "email and phone above company and title above note text; then newest first. The index is "
            "fed by the tables' streams, so a change shows within seconds (eventually consistent), and "
            "an item that no longer matches is never shown. Each term reads at most 1,000 index "
            "entries in word order: in a large workspace a broad term (one or two letters) may miss "
            "items; narrow it. A page may hold fewer than `limit` items (some no longer matched): "
            "follow `next_cursor` until it is null."
        ),
    ),
)
def search() -> Response:
    from chalicelib.search.query import search as run  # only searches load the search modules

    return json_response(run(settings(), search_api.owner(), search_api.query(SearchQuery)))
