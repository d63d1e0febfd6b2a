"""Schemathesis (4.x) against the local stack, driven by /openapi.json, with two users.

Every check applies (all enabled in the config, as `--checks all` would), including negative
data rejection, response schema conformance and object-level authorization (each user's
objects replayed as the other). Checks are tuned, not turned off: positive_data_acceptance
also accepts 400 and 412, because a schema-valid but server-unknown pagination cursor is
refused by design (cursors are signed and tamper-evident: 400) and an If-Match naming a
version other than the current one is refused by design (optimistic locking: 412). And
negative_data_rejection also accepts 413, the status issue #15 gives a batch of more than 100
operations. One check is off for one operation: ST302 (a resource a link named answers 404)
for adding a member, whose 404 is about the username in the body, not the workspace (set in
the config, since `--checks all` on the command line would override it); and creating or changing
a webhook may answer a schema-valid URL with 422 (where deliveries may not go is no schema's to say). A hook
(tests/schemathesis_hooks.py) gives each request that carries a valid Idempotency-Key a fresh
one, since the fuzzer reuses keys with other bodies (a 422 by design, issue #16). Fixed seed;
enough examples to cover every operation in every phase (examples, coverage, fuzzing, stateful).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.stack import Stack, signed_in

SEED = 20261127
MAX_EXAMPLES = 20
CONFIG = """
hooks = "{hooks}"

[generation]
max-examples = {max_examples}

[checks]
# Every check (what `--checks all` selects), set here so that an operation's section can tune one.
enabled = true

[checks.positive_data_acceptance]
# 400: a well-formed cursor this API did not sign; 412: If-Match naming another version.
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "429"]

[checks.negative_data_rejection]
# 413: more operations than a batch takes (maxItems), as issue #15 asks (schemathesis's default list has no 413).
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

[[operations]]
# Adding a member answers 404 for an unknown username in the body ("No user has the username ..."),
# which ensure_resource_availability (ST302) reads as the workspace a link named being missing.
include-path = "/api/v1/workspaces/{{workspace_id}}/members"
include-method = "POST"
checks.ensure_resource_availability.enabled = false

[[operations]]
# A webhook URL valid by the schema is still refused (422 on #/url) where deliveries may not go: the
# stacks here deliver to loopback only (WEBHOOK_LOOPBACK_ONLY: no name is resolved), and a deployed
# stage refuses names that resolve to private addresses, which no schema can say.
include-path = "/api/v1/webhooks"
include-method = "POST"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "422", "429"]

[[operations]]
# The same for changing a webhook's URL.
include-path = "/api/v1/webhooks/{{webhook_id}}"
include-method = "PATCH"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "422", "429"]

[auth.wfc]
path = "{wfc}"
peers = ["alice", "bob"]
"""


@pytest.fixture
def contract_stack(shared_stack: Stack) -> Stack:
    return shared_stack  # high rate limits: fuzzing sends thousands of requests


def _token(base: str, username: str) -> str:
    return signed_in(base, username)["Authorization"].removeprefix("Bearer ")


@pytest.mark.timeout(900)
def test_schemathesis_finds_nothing(contract_stack: Stack, tmp_path: Path) -> None:
    def identity(name: str) -> dict[str, object]:
        header = {"name": "Authorization", "value": f"Bearer {_token(contract_stack.base, name)}"}
        return {"name": name, "fixedHeaders": [header]}

    identities = {"auth": [identity("alice"), identity("bob")]}
    wfc = tmp_path / "identities.json"
    wfc.write_text(json.dumps(identities))
    config = tmp_path / "schemathesis.toml"
    hooks = Path(__file__).resolve().parent / "schemathesis_hooks.py"  # a fresh Idempotency-Key per request
    config.write_text(CONFIG.format(max_examples=MAX_EXAMPLES, wfc=wfc, hooks=hooks))
    reports = ROOT / "test-artifacts" / "schemathesis"
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run",
        contract_stack.base + "/openapi.json", "--seed", str(SEED), "--no-color",
        "--report", "junit", "--report-dir", str(reports), "--generation-database", "none",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    summary = done.stdout[-3000:]
    assert done.returncode == 0, done.stdout[-20000:]
    # 17 before #13, + 2 sessions operations, + 9 workspace operations, + search (#14), + import, batch, export (#15),
    # + 2 audit log reads and 7 webhook operations (#17)
    assert "Tested: 41" in summary
    assert "failures" not in summary.split("Seed:")[-1]
