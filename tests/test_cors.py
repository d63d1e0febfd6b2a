"""CORS: browser pages on the listed origins may call the API and read every answer."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.cors import ALLOWED_REQUEST_HEADERS, EXPOSED_HEADERS, PREFLIGHT_MAX_AGE_SECONDS
from tests.conftest import Api, CallCounter, problem

APP = "https://app.example.com"
OTHER_APP = "http://localhost:5173"
MISSING_ID = "01M8FP1CYTGFW5FGC7TXSJ3ETH"
CORS_HEADERS = ("access-control-allow-origin", "access-control-expose-headers", "access-control-allow-methods",
                "access-control-allow-headers", "access-control-max-age")  # fmt: skip


@pytest.fixture
def cors(limits: Any) -> None:
    limits(cors_allowed_origins=f"{APP}, {OTHER_APP}")


def readable_by(reply: Any, origin: str) -> None:
    """The answer lets a page on `origin` read it, and says it varies by Origin."""
    assert reply.header("access-control-allow-origin") == origin, reply.headers
    exposed = [name.strip() for name in (reply.header("access-control-expose-headers") or "").split(",")]
    assert exposed == list(EXPOSED_HEADERS)
    assert "Origin" in [name.strip() for name in (reply.header("vary") or "").split(",")]
    assert reply.header("access-control-allow-credentials") is None  # tokens travel in Authorization


def no_cors(reply: Any) -> None:
    assert not [name for name in CORS_HEADERS if reply.header(name) is not None], reply.headers


def test_without_configuration_no_answer_has_cors_headers(alice: Api) -> None:
    for reply in (
        alice.get("/contacts", headers={"Origin": APP}),
        alice.get(f"/contacts/{MISSING_ID}", headers={"Origin": APP}),
        alice.request("OPTIONS", "/contacts", headers={"Origin": APP, "Access-Control-Request-Method": "POST"}),
    ):
        no_cors(reply)
        assert "Origin" not in (reply.header("vary") or "")  # an authenticated read varies by Authorization only


@pytest.mark.usefixtures("cors")
def test_answers_to_an_allowed_origin_are_readable(alice: Api) -> None:
    created = alice.post("/contacts", {"first_name": "Ada"}, headers={"Origin": APP})
    assert created.status == 201
    readable_by(created, APP)
    assert created.header("etag")
    contact_id = created.json["id"]
    for reply in (
        alice.get("/contacts", headers={"Origin": OTHER_APP}),
        alice.get(f"/contacts/{contact_id}", headers={"Origin": OTHER_APP}),
        alice.patch(f"/contacts/{contact_id}", {"title": "Countess"}, headers={"Origin": OTHER_APP}),
    ):
        assert reply.status == 200
        readable_by(reply, OTHER_APP)
    deleted = alice.delete(f"/contacts/{contact_id}", headers={"Origin": APP})
    assert deleted.status == 204
    readable_by(deleted, APP)


@pytest.mark.usefixtures("cors")
def test_problems_are_readable_too(alice: Api, anon: Api) -> None:
    cases = {
        422: alice.post("/contacts", {"first_name": ""}, headers={"Origin": APP}),
        404: alice.get(f"/contacts/{MISSING_ID}", headers={"Origin": APP}),
        405: alice.delete("/contacts", headers={"Origin": APP}),
        415: alice.post("/contacts", raw=b"x", headers={"Origin": APP, "content-type": "text/plain"}),
        400: alice.post("/contacts", raw=b"{", headers={"Origin": APP, "content-type": "application/json"}),
        # API Gateway's own answers (no token; no such resource), rendered from the template.
        401: anon.get("/contacts", headers={"Origin": APP}),
    }
    for status, reply in cases.items():
        problem(reply, status)
        readable_by(reply, APP)
    unknown = anon.get("/no-such-thing", headers={"Origin": APP})
    problem(unknown, 404)
    readable_by(unknown, APP)


def test_a_rate_limited_answer_is_readable(anon: Api, limits: Any) -> None:
    limits(cors_allowed_origins=APP, rate_limit_burst=1, rate_limit_per_second=0.01)
    assert anon.get("/health", headers={"Origin": APP}).status == 200
    limited = anon.get("/health", headers={"Origin": APP})
    problem(limited, 429)
    readable_by(limited, APP)
    assert limited.header("retry-after")


@pytest.mark.usefixtures("cors")
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "https://app.example.com.evil.example",  # the allowed origin as a prefix
        "https://evil.example/https://app.example.com",
        "http://app.example.com",  # another scheme
        "https://app.example.com:8443",  # another port
        "HTTPS://APP.EXAMPLE.COM",  # browsers serialize origins in lower case; nothing else sends this
        "https://app.example.com/",
        "null",  # sandboxed frames, file: pages
        "",
        f"{APP}, https://evil.example.com",
    ],
)
def test_other_origins_get_no_permission(alice: Api, origin: str) -> None:
    reply = alice.get("/contacts", headers={"Origin": origin})
    assert reply.status == 200
    no_cors(reply)
    # a shared cache must not give this answer to the app (nor to another user: Authorization)
    assert reply.header("vary") == "Origin, Authorization"
    preflight = alice.request(
        "OPTIONS", "/contacts", auth=False, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 204
    no_cors(preflight)


@pytest.mark.usefixtures("cors")
def test_preflight_allows_the_routes_methods_and_our_headers_without_a_token(anon: Api) -> None:
    reply = anon.request(
        "OPTIONS",
        f"/contacts/{MISSING_ID}",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type,if-match",
        },
    )
    assert reply.status == 204
    assert reply.body == b""
    assert reply.header("access-control-allow-origin") == APP
    assert reply.header("access-control-allow-methods") == "GET, PUT, PATCH, DELETE, OPTIONS"
    allowed_headers = [name.strip() for name in (reply.header("access-control-allow-headers") or "").split(",")]
    assert allowed_headers == list(ALLOWED_REQUEST_HEADERS)
    assert reply.header("access-control-max-age") == str(PREFLIGHT_MAX_AGE_SECONDS)
    assert reply.header("allow") == "GET, PUT, PATCH, DELETE, OPTIONS"
    assert "Origin" in (reply.header("vary") or "")


@pytest.mark.usefixtures("cors")
@pytest.mark.parametrize(
    ("path", "method"),
    [("/contacts", "DELETE"), ("/contacts", "TRACE"), ("/health", "POST"), ("/contacts", "get"), ("/contacts", "")],
)
def test_preflight_for_a_method_the_route_lacks_grants_nothing(anon: Api, path: str, method: str) -> None:
    headers = {"Origin": APP, "Access-Control-Request-Method": method}
    reply = anon.request("OPTIONS", path, headers=headers)
    assert reply.status == 204
    no_cors(reply)
    assert reply.header("allow")


@pytest.mark.usefixtures("cors")
def test_an_options_request_that_is_not_a_preflight_is_answered_like_any_other(anon: Api) -> None:
    reply = anon.request("OPTIONS", "/contacts", headers={"Origin": APP})
    assert reply.status == 204
    assert reply.header("allow") == "GET, POST, OPTIONS"
    readable_by(reply, APP)
    assert reply.header("access-control-allow-methods") is None


@pytest.mark.usefixtures("cors")
def test_every_resource_answers_a_preflight(anon: Api) -> None:
    from app import ALLOWED

    for resource, methods in ALLOWED.items():
        path = resource.replace("{contact_id}", MISSING_ID).replace("{note_id}", MISSING_ID)
        path = path.replace("{name}", "swagger-ui.css")
        asked = next(method for method in methods if method != "OPTIONS")
        reply = anon.client.http.request(
            "OPTIONS", path, headers={"Origin": APP, "Access-Control-Request-Method": asked}, body=b""
        )
        assert reply.status_code == 204, (resource, reply.body)
        assert reply.headers.get("Access-Control-Allow-Origin") == APP, resource
        assert asked in reply.headers["Access-Control-Allow-Methods"], resource


def test_a_preflight_costs_no_dynamodb_call_and_is_never_rate_limited(
    anon: Api, limits: Any, dynamodb: CallCounter
) -> None:
    limits(cors_allowed_origins=APP, rate_limit_burst=1, rate_limit_per_second=0.01)
    assert anon.get("/health").status == 200
    assert anon.get("/health").status == 429
    dynamodb.reset()
    for _ in range(5):
        reply = anon.request("OPTIONS", "/contacts", headers={"Origin": APP, "Access-Control-Request-Method": "POST"})
        assert reply.status == 204
        assert reply.header("access-control-allow-origin") == APP
    assert dynamodb.log == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://App.Example.com:443", ("https://app.example.com",)),
        ("http://localhost:80,  http://localhost:5173 ,", ("http://localhost", "http://localhost:5173")),
        ("https://bücher.example", ("https://xn--bcher-kva.example",)),
        ("http://[::1]:8080", ("http://[::1]:8080",)),
        ("https://a.example, https://a.example", ("https://a.example",)),
        ("", ()),
    ],
)
def test_origins_are_read_as_browsers_send_them(limits: Any, value: str, expected: tuple[str, ...]) -> None:
    from chalicelib.runtime import settings

    limits(cors_allowed_origins=value)
    assert settings().cors_allowed_origins == expected


@pytest.mark.parametrize(
    "value",
    ["*", "https://*.example.com", "https://app.example.com/", "https://app.example.com/path", "app.example.com",
     "null", "ftp://files.example.com", "https://user:pw@app.example.com", "https://app.example.com:99999",
     "https://app.example.com?x=1"],
)  # fmt: skip
def test_a_list_that_is_not_origins_stops_the_service(anon: Api, limits: Any, value: str) -> None:
    limits(cors_allowed_origins=value)
    body = problem(anon.get("/health"), 500)
    assert body["detail"] == "The service is not configured."


# ---- as deployed -------------------------------------------------------------------------------


@pytest.mark.usefixtures("cors", "dynamodb")
def test_on_api_gateway_a_preflight_needs_no_token_or_api_key_and_reaches_the_api() -> None:
    from chalice.deploy.swagger import CFNSwaggerGenerator

    from app import app
    from bench.inprocess import proxy_event

    paths = CFNSwaggerGenerator().generate_swagger(app)["paths"]  # what `chalice package` deploys
    for resource, operations in paths.items():
        options = operations["options"]
        assert not options.get("security"), resource  # neither the authorizer nor an API key
        assert options["x-amazon-apigateway-integration"]["type"] == "aws_proxy", resource
    event = proxy_event("OPTIONS", "/api/v1/contacts/{contact_id}", f"/api/v1/contacts/{MISSING_ID}",
                        {"contact_id": MISSING_ID})  # fmt: skip
    event["headers"] |= {"origin": APP, "access-control-request-method": "DELETE"}
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    reply = app(event, None)
    assert reply["statusCode"] == 204
    assert reply["headers"]["Access-Control-Allow-Origin"] == APP
    assert "DELETE" in reply["headers"]["Access-Control-Allow-Methods"]


def test_gateway_answers_carry_cors_headers_only_when_cors_is_on(limits: Any) -> None:
    from devtools.gateway import gateway_responses, render_entry

    for kind, entry in gateway_responses().items():
        off = render_entry(entry, 400, "rid", "", {"Origin": APP})["headers"]
        assert not [name for name in off if name.lower().startswith("access-control-")], kind
        assert "Vary" not in off, kind
    limits(cors_allowed_origins=APP)
    for kind, entry in gateway_responses().items():
        headers = render_entry(entry, 400, "rid", "", {"origin": OTHER_APP})["headers"]
        assert headers["Access-Control-Allow-Origin"] == OTHER_APP, kind  # API Gateway cannot consult the list
        assert headers["Vary"] == "Origin", kind
        assert headers["Access-Control-Expose-Headers"] == ", ".join(EXPOSED_HEADERS), kind
        assert "Access-Control-Allow-Origin" not in render_entry(entry, 400, "rid", "", {})["headers"], kind
