"""Cold start: a fresh interpreter importing the Lambda handler and answering its first request.

Each run is a new process that imports nothing before the clock starts; the clock covers
importing the handler module through the first response (the rate limiter's UpdateItem
goes to a moto server on loopback that this benchmark starts once, so the child pays for a
real DynamoDB round trip but for none of moto's imports). The floor is a fresh interpreter
importing chalice and botocore and making a DynamoDB client; the comparison is FastAPI +
Mangum answering a hello-world with a boto3 client made, the stack a user would otherwise
pick. Medians of RUNS runs each, run in rounds (every program once per round).
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.inprocess import proxy_event
from bench.report import Figure

ROOT = Path(__file__).resolve().parent.parent
RUNS = 21
# The variables .chalice/config.json gives every function, so the child starts as deployed.
FUNCTION_ENV = json.loads((ROOT / ".chalice" / "config.json").read_text())["environment_variables"]
ENV = {**FUNCTION_ENV, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
       "AWS_DEFAULT_REGION": "us-east-1", "STAGE": "local", "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip

EVENT = json.dumps(proxy_event("GET", "/api/v1/health", "/api/v1/health", None))

OURS = f"""
import json, time
event = json.loads('''{EVENT}''')
start = time.perf_counter()
import app
response = app.app(event, None)
elapsed = time.perf_counter() - start
assert response["statusCode"] == 200, response
print(elapsed)
"""

# The same, but a signed-in user's first page of contacts, as API Gateway passes it on once
# the authorizer has allowed it: the Query, the page's schemas, the cursor machinery.
AUTHORIZED = {"user_id": "01M8FP1CYTGFW5FGC7TXSJ3ETH", "owner_id": "01M8FP1CYTGFW5FGC7TXSJ3ETH", "tier": "default",
              "exp": "9999999999"}  # fmt: skip
LIST_EVENT = json.dumps(proxy_event("GET", "/api/v1/contacts", "/api/v1/contacts", None, authorizer=AUTHORIZED))
OURS_LIST = OURS.replace(f"""'''{EVENT}'''""", f"""'''{LIST_EVENT}'''""")

FLOOR = """
import time
start = time.perf_counter()
import chalice, botocore.session
client = botocore.session.get_session().create_client("dynamodb", region_name="us-east-1")
print(time.perf_counter() - start)
"""

# The floor plus what any first request of ours needs whatever our code does: pydantic (the
# settings are validated by it), PynamoDB, and the rate limiter's one DynamoDB call.
STACK_FLOOR = """
import os, time
start = time.perf_counter()
import chalice, botocore.session, pynamodb.models
from pydantic import BaseModel, Field, ValidationError
client = botocore.session.get_session().create_client(
    "dynamodb", region_name="us-east-1", endpoint_url=os.environ["DYNAMODB_ENDPOINT"])
client.update_item(TableName="contact-notes-rate-limits", Key={"key": {"S": "floor"}},
                   UpdateExpression="SET tat = :t", ExpressionAttributeValues={":t": {"N": "1"}})
print(time.perf_counter() - start)
"""

FASTAPI = f"""
import json, time
event = json.loads('''{EVENT}''')
start = time.perf_counter()
import boto3
from fastapi import FastAPI
from mangum import Mangum
client = boto3.client("dynamodb", region_name="us-east-1")
api = FastAPI()

@api.get("/api/v1/health")
def health():
    return {{"status": "ok"}}

response = Mangum(api, lifespan="off")(event, type("Context", (), {{"aws_request_id": "cold"}})())
elapsed = time.perf_counter() - start
assert response["statusCode"] == 200, response
print(elapsed)
"""


def _seconds(script: str, env: dict[str, str]) -> float:
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=True)  # noqa: S603
    return float(done.stdout.strip().splitlines()[-1])


def _rounds(scripts: list[str], extra_env: dict[str, str]) -> list[list[float]]:
    """RUNS rounds, each running every script once in turn, so that a slow spell of this
    shared machine falls on all of them alike."""
    env = {**os.environ, **ENV, **extra_env, "PYTHONPATH": str(ROOT)}
    return [[_seconds(script, env) for script in scripts] for _ in range(RUNS)]


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a process of its own on loopback (in this process, its thread would
    compete with nothing but would add its own jitter to every child's one call)."""
    from devtools.local_stack import free_port
    from tests.stack import poll

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603

    def answering() -> bool:
        if server.poll() is not None:
            raise RuntimeError("moto's server exited")
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()  # noqa: S310 (loopback)
        except OSError:
            return False
        return True

    try:
        poll(answering, 60)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def run() -> list[Figure]:
    from chalicelib.config import load_settings
    from chalicelib.models import create_tables

    # Our modules as the Lambda bundle ships them: byte-compiled (devtools/package.py). This
    # machine sets PYTHONDONTWRITEBYTECODE, so nothing else would write them.
    compileall.compile_file(ROOT / "app.py", quiet=1)
    compileall.compile_dir(ROOT / "chalicelib", quiet=1)
    with moto_server() as url:
        endpoint = {"DYNAMODB_ENDPOINT": url}
        os.environ.update({k: v for k, v in ENV.items() if k.startswith("AWS_")})
        create_tables(load_settings({**ENV, **endpoint}))
        rounds = _rounds([FLOOR, OURS, FASTAPI, STACK_FLOOR, OURS_LIST], endpoint)
    floor, ours, fastapi, stack, listing = (statistics.median(r[i] for r in rounds) for i in range(5))
    return [
        Figure("cold start", "floor: import chalice + botocore, make a client", floor * 1000, "ms", budget=None),
        Figure("cold start", "ours: import the handler, answer the first request", ours * 1000, "ms", budget=None),
        Figure("cold start", "FastAPI + Mangum hello world with a boto3 client", fastapi * 1000, "ms", budget=None),
        Figure("cold start", "ours / floor", ours / floor, "x", budget=1.5),
        Figure("cold start", "ours / FastAPI + Mangum (must start faster)", ours / fastapi, "x", budget=1.0),
        Figure(
            "cold start",
            "floor + pydantic + PynamoDB + one UpdateItem (no code of ours)",
            stack * 1000,
            "ms",
            budget=None,
        ),
        Figure("cold start", "  that / floor: what the stack alone costs", stack / floor, "x", budget=None),
        Figure("cold start", "  ours / that: what our code adds", ours / stack, "x", budget=None),
        Figure(
            "cold start", "ours, first request a signed-in GET /contacts instead", listing * 1000, "ms", budget=None
        ),
        Figure("cold start", "  that / floor", listing / floor, "x", budget=None),
    ]


if __name__ == "__main__":
    figures = run()
    print(json.dumps([f.__dict__ for f in figures], indent=1))
