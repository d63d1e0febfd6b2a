"""Cold start: a fresh interpreter importing the Lambda handler and answering its first request.

Each run is a new process that imports nothing before the clock starts; the clock covers
importing the handler module through the first response (the rate limiter's UpdateItem
goes to a moto server on loopback that this benchmark starts once, so the child pays for a
real DynamoDB round trip but for none of moto's imports). The floor is a fresh interpreter
importing chalice and botocore and making a DynamoDB client; the comparison is FastAPI +
Mangum answering a hello-world with a boto3 client made, the stack a user would otherwise
pick. "Deployed" runs the API function's bundle as devtools/package.py builds it, with what
only AWS turns on: Lambda's environment (so tracing is on), the signing secret read from
Secrets Manager (on the same moto server) and a signed-in GET /contacts as the first request.
Times are medians of RUNS runs each, run in rounds (every program once per round); ratios
are medians of the per-round ratios.
"""

from __future__ import annotations

import compileall
import json
import os
import platform
import py_compile
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


# What Lambda sets for the API function (besides the template's variables): tracing turns
# on inside Lambda (LAMBDA_TASK_ROOT, a trace header), and the X-Ray SDK sends its segments
# over UDP to the daemon's address, here loopback where nothing listens.
LAMBDA_ENV = {
    "STAGE": "dev",
    "AWS_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "contact-notes-dev",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
    "_HANDLER": "app.app",
    "_X_AMZN_TRACE_ID": "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
}
# Never inherited by the deployed program: they would turn tracing off or skip the secret.
NOT_ON_LAMBDA = ("JWT_SECRET", "POWERTOOLS_TRACE_DISABLED", "AWS_CHALICE_CLI_MODE", "AWS_SAM_LOCAL", "PYTHONPATH")


@dataclass(frozen=True)
class Program:
    script: str
    env: dict[str, str]
    cwd: Path = ROOT


def _seconds(program: Program) -> float:
    command = [sys.executable, "-c", program.script]
    done = subprocess.run(command, capture_output=True, text=True, env=program.env, cwd=program.cwd, timeout=120)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"a cold-start program failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def _rounds(programs: list[Program]) -> list[list[float]]:
    """RUNS rounds, each running every program once in turn, so that a slow spell of this
    shared machine falls on all of them alike."""
    return [[_seconds(program) for program in programs] for _ in range(RUNS)]


def local_program(script: str, endpoint: str) -> Program:
    """A script run from the work tree, as the local benchmark always did."""
    return Program(script, {**os.environ, **ENV, "DYNAMODB_ENDPOINT": endpoint, "PYTHONPATH": str(ROOT)})


def deployed_program(task_root: Path, endpoint: str, secret_arn: str) -> Program:
    """The signed-in first request, run from an unpacked bundle with the environment the
    deployed API function gets (the template's variables, Lambda's own, the secret's ARN)."""
    inherited = {k: v for k, v in os.environ.items() if k not in NOT_ON_LAMBDA}
    where = {"LAMBDA_TASK_ROOT": str(task_root), "PYTHONPATH": str(task_root), "JWT_SECRET_ARN": secret_arn,
             "DYNAMODB_ENDPOINT": endpoint, "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint}  # fmt: skip
    env = {**inherited, **ENV, **LAMBDA_ENV, **where}
    return Program(OURS_LIST, env, cwd=task_root)


def unpacked_bundle(source: Path, out: Path) -> Path:
    """The API function's bundle built by devtools/package.py from `source` (a work tree),
    unpacked into `out`. Its compiled extensions are built for the functions' arm64, so those
    few distributions are replaced by this machine's wheels of the same versions (from the
    same wheel cache), byte-compiled as the package step compiles the rest. Everything else,
    our modules and their bytecode included, is the bundle's own. Packages the runtime
    provides (boto3, botocore) come from this interpreter, as Lambda's come from its runtime."""
    build = out / "build"
    command = [sys.executable, "-m", "devtools.package", "--stage", "dev", "--out", str(build)]
    subprocess.run(command, cwd=source, check=True, capture_output=True, timeout=600)  # noqa: S603
    task = out / "task"
    with zipfile.ZipFile(build / "deployment.zip") as bundle:
        bundle.extractall(task)
    for wheel_info in task.glob("*.dist-info/WHEEL"):
        if "Root-Is-Purelib: false" in wheel_info.read_text():
            _swap_for_this_machine(task, wheel_info.parent)
    return task


def _swap_for_this_machine(task: Path, dist_info: Path) -> None:
    name_version = dist_info.name.removesuffix(".dist-info")
    wheels = ROOT / ".cache" / "lambda-wheels"
    matches = [w for w in wheels.glob(f"{name_version}-*.whl") if platform.machine() in w.name]
    if not matches:
        raise RuntimeError(f"no {platform.machine()} wheel of {name_version} in {wheels}: run `make wheels`")
    for line in (dist_info / "RECORD").read_text().splitlines():
        (task / line.split(",", 1)[0]).unlink(missing_ok=True)
    with zipfile.ZipFile(matches[0]) as wheel:
        wheel.extractall(task)
        sources = [name for name in wheel.namelist() if name.endswith(".py")]
    for name in sources:
        py_compile.compile(str(task / name), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def create_secret(endpoint: str) -> str:
    """The deployed stages' signing key, in the moto server's Secrets Manager; returns its ARN."""
    import boto3

    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint)
    return str(client.create_secret(Name="contact-notes/jwt", SecretString="s" * 64)["ARN"])


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a process of its own on loopback (in this process, its thread would
    compete with nothing but would add its own jitter to every child's one call)."""
    from devtools.local_stack import free_port
    from tests.stack import start_moto_server, stop_process

    port = free_port()
    server = start_moto_server(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(server)


def run() -> list[Figure]:
    from chalicelib.config import load_settings
    from chalicelib.models import create_tables

    # Our modules as the Lambda bundle ships them: byte-compiled (devtools/package.py). This
    # machine sets PYTHONDONTWRITEBYTECODE, so nothing else would write them.
    compileall.compile_file(ROOT / "app.py", quiet=1)
    compileall.compile_dir(ROOT / "chalicelib", quiet=1)
    with moto_server() as url, tempfile.TemporaryDirectory() as out:
        task_root = unpacked_bundle(ROOT, Path(out))
        os.environ.update({k: v for k, v in ENV.items() if k.startswith("AWS_")})
        create_tables(load_settings({**ENV, "DYNAMODB_ENDPOINT": url}))
        local = [local_program(script, url) for script in (FLOOR, OURS, FASTAPI, STACK_FLOOR, OURS_LIST)]
        rounds = _rounds([*local, deployed_program(task_root, url, create_secret(url))])
    floor, ours, fastapi, stack, listing, deployed = (statistics.median(r[i] for r in rounds) for i in range(6))

    def ratio(i: int, j: int) -> float:
        """Program i against program j: the median of their ratios within each round, so that
        a slow spell of this machine, which moves both sides of a round's pair alike, cancels
        (a ratio of the medians takes its two sides from different rounds)."""
        return statistics.median(r[i] / r[j] for r in rounds)

    return [
        Figure("cold start", "floor: import chalice + botocore, make a client", floor * 1000, "ms", budget=None),
        Figure("cold start", "ours: import the handler, answer the first request", ours * 1000, "ms", budget=None),
        Figure("cold start", "FastAPI + Mangum hello world with a boto3 client", fastapi * 1000, "ms", budget=None),
        Figure(
            "cold start",
            "floor + pydantic + PynamoDB + one UpdateItem (no code of ours): the stack floor",
            stack * 1000,
            "ms",
            budget=None,
        ),
        # Budgets on what our code controls, each against a program run in the same rounds.
        # The stack floor alone is 1.46-1.69x the bare floor, so a budget on ours / floor is
        # met or missed by noise (BENCHMARKS.md); that ratio is reported, not budgeted.
        Figure("cold start", "ours / stack floor: what our code adds", ratio(1, 3), "x", budget=1.10),
        Figure("cold start", "ours / FastAPI + Mangum", ratio(1, 2), "x", budget=0.75),
        Figure("cold start", "ours / floor", ratio(1, 0), "x", budget=None),
        Figure("cold start", "  stack floor / floor: what the stack alone costs", ratio(3, 0), "x", budget=None),
        Figure(
            "cold start", "ours, first request a signed-in GET /contacts instead", listing * 1000, "ms", budget=None
        ),
        Figure("cold start", "  that / floor", ratio(4, 0), "x", budget=None),
        Figure(
            "cold start",
            "deployed: the bundle as the API function runs it (tracing on, secret from Secrets Manager), "
            "first request a signed-in GET /contacts",
            deployed * 1000,
            "ms",
            budget=None,
        ),
        Figure("cold start", "  deployed / ours with the same first request", ratio(5, 4), "x", budget=1.15),
    ]


if __name__ == "__main__":
    figures = run()
    print(json.dumps([f.__dict__ for f in figures], indent=1))
