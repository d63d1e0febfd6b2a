"""Overhead: our handler against a bare Chalice route making the same DynamoDB calls with boto3.

PynamoDB sends every call with ReturnConsumedCapacity=TOTAL, so the bare route does too: the
DynamoDB requests are the same, only what runs around them differs.

Both are invoked as Lambda handlers with API Gateway proxy events, on the same moto backend
in this process, interleaved request by request so that noise falls on both alike. Ours
pays for its authorizer on every request (API Gateway would cache it for 5 minutes), the
middleware (settings, expiry check, rate limit, headers, metrics), pydantic validation and
serialization, ETags and problem handling; the bare route does the limiter's conditional
UpdateItem and the route's own call with a boto3 client and returns `json.dumps` of the item.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.inprocess import PREFIX, LambdaCaller, proxy_event
from bench.report import Figure

SAMPLES = 300
WARMUP = 20
PAGE = 50  # the API's default page size


def bare_app(tables: dict[str, str], user_key: str, limiter: dict[str, str]) -> Any:
    """The baseline: routes with no framework of ours, only boto3 and the same DynamoDB calls.

    `limiter` holds the UpdateExpression and ConditionExpression our rate limiter was seen
    sending for this caller in steady state; the bare route sends that same conditional
    UpdateItem on an item of its own.
    """
    import boto3
    from chalice import Chalice, Response

    bare = Chalice(app_name="bare")
    client = boto3.client("dynamodb", region_name="us-east-1")
    key = {"key": {"S": "bare#" + user_key}}
    client.put_item(TableName=tables["limits"], Item={**key, "tat": {"N": "0"}})

    def limit() -> None:
        now = time.time_ns() // 1000
        client.update_item(
            TableName=tables["limits"],
            Key=key,
            **limiter,
            ExpressionAttributeValues={
                ":now": {"N": str(now)},
                ":nowT": {"N": str(now + 10)},
                ":exp": {"N": str(now // 1_000_000 + 3600)},
            },
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    def plain(item: dict[str, Any]) -> dict[str, Any]:
        return {name: next(iter(value.values())) for name, value in item.items()}

    @bare.route(PREFIX + "/contacts/{contact_id}", methods=["GET"])
    def get_contact(contact_id: str) -> Response:
        limit()
        key = {"owner_id": {"S": user_key}, "contact_id": {"S": contact_id}}
        read = {"ConsistentRead": True, "ReturnConsumedCapacity": "TOTAL"}
        item = client.get_item(TableName=tables["contacts"], Key=key, **read)["Item"]
        return Response(json.dumps(plain(item)), status_code=200, headers={"content-type": "application/json"})

    @bare.route(PREFIX + "/contacts", methods=["GET"])
    def list_contacts() -> Response:
        limit()
        found = client.query(
            TableName=tables["contacts"],
            KeyConditionExpression="owner_id = :o",
            ExpressionAttributeValues={":o": {"S": user_key}},
            ScanIndexForward=False,
            ConsistentRead=True,
            Limit=PAGE + 1,  # as ours: one more than the page, to know whether a next page exists
            ReturnConsumedCapacity="TOTAL",
        )
        items = [plain(i) for i in found["Items"][:PAGE]]
        return Response(json.dumps({"items": items}), status_code=200, headers={"content-type": "application/json"})

    @bare.route(PREFIX + "/contacts", methods=["POST"])
    def create_contact() -> Response:
        limit()
        request = bare.current_request
        assert request is not None
        body = request.json_body
        contact_id = f"{time.time_ns():026d}"
        item = {"owner_id": {"S": user_key}, "contact_id": {"S": contact_id}, "first_name": {"S": body["first_name"]}}
        client.put_item(
            TableName=tables["contacts"],
            Item=item,
            ConditionExpression="attribute_not_exists(contact_id)",
            ReturnConsumedCapacity="TOTAL",
        )
        return Response(json.dumps(plain(item)), status_code=201, headers={"content-type": "application/json"})

    return bare


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _race(ours: Callable[[], int], bare: Callable[[], int], expected: int) -> tuple[list[float], list[float]]:
    """Alternate the two handlers; return the per-request seconds of each."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(WARMUP + SAMPLES):
        for side, call in enumerate((ours, bare)):
            start = time.perf_counter()
            status = call()
            elapsed = time.perf_counter() - start
            assert status == expected, (side, status)
            if i >= WARMUP:
                times[side].append(elapsed)
    return times


def run() -> list[Figure]:
    from bench.calls import counting
    from bench.inprocess import moto_api

    with moto_api() as anonymous:
        from chalicelib import runtime

        alice = anonymous.sign_up("alice")
        contact = alice.post("/contacts", {"first_name": "Ada", "last_name": "Lovelace"}).json
        for i in range(30):
            alice.post("/contacts", {"first_name": f"Contact {i}", "company": "Analytical Engines"})
        settings = runtime.settings()
        ours = LambdaCaller(alice.token or "")
        owner = ours.authorize()["owner_id"]
        tables = {"limits": settings.rate_limits_table, "contacts": settings.contacts_table}
        with counting() as seen:
            alice.get("/health")
        bare = bare_app(tables, owner, seen.limiter_params[-1])

        def baseline(method: str, resource: str, path: str, params: dict[str, str] | None, body: Any = None) -> int:
            return int(bare(proxy_event(method, PREFIX + resource, PREFIX + path, params, body), None)["statusCode"])

        cases = [
            ("GET /contacts/{id}", ("GET", "/contacts/{contact_id}", f"/contacts/{contact['id']}",
                                    {"contact_id": contact["id"]}), 200),
            ("GET /contacts (a page: 31 contacts)", ("GET", "/contacts", "/contacts", None), 200),
            ("POST /contacts", ("POST", "/contacts", "/contacts", None, {"first_name": "Grace"}), 201),
        ]  # fmt: skip
        figures = []
        for name, args, status in cases:
            mine, theirs = _race(lambda a=args: ours(*a), lambda a=args: baseline(*a), status)  # type: ignore[misc]
            (p50, p99), (bare50, bare99) = _percentiles(mine), _percentiles(theirs)
            figures += [
                Figure("overhead", f"{name}: ours p50 / bare boto3 p50", p50 / bare50, "x", budget=1.3),
                Figure("overhead", f"{name}: ours p50 - bare p50", (p50 - bare50) * 1000, "ms", budget=None),
                Figure("overhead", f"{name}: ours p99 / bare p99 ({p99 * 1000:.1f} / {bare99 * 1000:.1f} ms)",
                       p99 / bare99, "x", budget=None),
            ]  # fmt: skip
    return figures
