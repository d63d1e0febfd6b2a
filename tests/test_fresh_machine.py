"""A fresh machine: `make test`'s bootstrap (devtools/prereqs.py) and the tests that need
system tools, run as real subprocesses with those tools hidden.

apt-get is either absent from PATH or a fake one in a temporary folder: nothing here
installs anything or reaches the network. devtools/fresh_machine_check.sh does the whole
path on a fresh clone (`make test` itself).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.prereqs import APT_LOG, FAILED_STAMP
from tests.conftest import ROOT

FAKE_APT = """#!/bin/sh
echo "$*" >> "$FAKE_APT_CALLS"
[ -n "$FAKE_APT_FAIL" ] && exit 100
if [ "$1" = install ]; then
  printf '#!/bin/sh\\n' > "$CHROMIUM_PATH"
  printf '#!/bin/sh\\n' > "${0%/*}/curl"
  /bin/chmod +x "$CHROMIUM_PATH" "${0%/*}/curl"
fi
"""
# A passwordless sudo, for a run that is not root: drops -n and VAR=value, runs the rest.
FAKE_SUDO = """#!/bin/sh
while [ "$1" = -n ] || [ "${1#*=}" != "$1" ]; do [ "$1" = -n ] || export "$1"; shift; done
[ "$1" = true ] && exit 0
exec "$@"
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, str]:
    """An environment with no curl, chromium or apt-get: PATH is one empty folder."""
    (tmp_path / "bin").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REQUIRE_")}
    env.update(PATH=str(tmp_path / "bin"), CHROMIUM_PATH=str(tmp_path / "chromium"), PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.fixture
def fake_apt(tmp_path: Path, machine: dict[str, str]) -> Path:
    """Puts a fake apt-get (and sudo) on the machine's PATH; returns the file logging its calls."""
    _executable(tmp_path / "bin" / "apt-get", FAKE_APT)
    _executable(tmp_path / "bin" / "sudo", FAKE_SUDO)
    calls = tmp_path / "apt-calls"
    machine["FAKE_APT_CALLS"] = str(calls)
    return calls


def bootstrap(env: dict[str, str], state: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "devtools.prereqs", "--state-dir", str(state)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_nothing_installable_is_one_line_each_and_passes(machine: dict[str, str], tmp_path: Path) -> None:
    done = bootstrap(machine, tmp_path / "state")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"contact-notes: chromium not found (CHROMIUM_PATH={tmp_path / 'chromium'}; Debian package chromium): "
        "cannot install it here (apt-get is not on PATH); the /docs browser test will be skipped",
        "contact-notes: curl not found (on PATH; Debian package curl): "
        "cannot install it here (apt-get is not on PATH); the README's curl flow test will be skipped",
    ]
    assert not (tmp_path / "state").exists()


def test_a_required_prerequisite_that_is_missing_is_an_error(machine: dict[str, str], tmp_path: Path) -> None:
    done = bootstrap({**machine, "REQUIRE_BROWSER": "1"}, tmp_path / "state")
    assert done.returncode == 1
    assert "chromium not found" in done.stdout and "REQUIRE_BROWSER=1 makes this an error" in done.stdout
    assert "the README's curl flow test will be skipped" in done.stdout  # not required: still a skip


def test_installs_what_is_missing_once(machine: dict[str, str], fake_apt: Path, tmp_path: Path) -> None:
    done = bootstrap(machine, tmp_path / "state")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "contact-notes: installing chromium curl with apt-get, once "
        "(for the /docs browser test, the README's curl flow test)"
    ]
    assert fake_apt.read_text().splitlines() == ["update -qq", "install -y -qq chromium curl"]
    assert (tmp_path / "chromium").exists()

    again = bootstrap(machine, tmp_path / "state")
    assert (again.returncode, again.stdout) == (0, "")
    assert len(fake_apt.read_text().splitlines()) == 2


def test_a_failed_install_is_not_retried(machine: dict[str, str], fake_apt: Path, tmp_path: Path) -> None:
    machine["FAKE_APT_FAIL"] = "1"
    state = tmp_path / "state"
    first = bootstrap(machine, state)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0].startswith("contact-notes: installing chromium curl with apt-get")
    assert "apt-get failed" in first.stdout and "will be skipped" in first.stdout
    assert (state / FAILED_STAMP).exists() and (state / APT_LOG).exists()

    second = bootstrap(machine, state)
    assert second.returncode == 0
    assert fake_apt.read_text().splitlines() == ["update -qq"]  # not called again
    assert f"delete {state / FAILED_STAMP} to retry" in second.stdout
    assert "an earlier apt-get run failed" in second.stdout and "installing" not in second.stdout


def pytest_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # One process: the suite's parallel workers would only add start-up time to one file.
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


# Every test that needs a system tool, selected in one run (each run of pytest costs seconds of
# imports): the docs and CORS browser tests, and the README's curl flow.
NEEDS_TOOLS = ("tests/test_docs_browser.py", "tests/test_cors_browser.py", "tests/test_local_stack.py",
               "-k", "browser or authorize or readme_curl_flow")  # fmt: skip


def test_tests_needing_a_missing_tool_skip_with_its_reason(machine: dict[str, str], tmp_path: Path) -> None:
    done = pytest_run(machine, *NEEDS_TOOLS)
    assert done.returncode == 0, done.stdout[-3000:]
    for test in ("tests/test_docs_browser.py", "tests/test_cors_browser.py", "tests/test_local_stack.py"):
        assert f"SKIPPED [1] {test}:" in done.stdout, test
    missing_browser = f"chromium not found (CHROMIUM_PATH={tmp_path / 'chromium'}; Debian package chromium)"
    assert done.stdout.count(missing_browser) == 2
    assert "curl not found (on PATH; Debian package curl)" in done.stdout
    assert "3 skipped" in done.stdout.splitlines()[-1]


def test_tests_needing_a_missing_tool_fail_when_required(machine: dict[str, str]) -> None:
    done = pytest_run({**machine, "REQUIRE_BROWSER": "1", "REQUIRE_CURL": "1"}, *NEEDS_TOOLS)
    assert done.returncode == 1
    # Checked before any stack starts, so each is an error in its test's setup, or a failure.
    assert done.stdout.count("and REQUIRE_BROWSER=1 requires it") >= 2
    assert "REQUIRE_CURL=1 requires it" in done.stdout
    last = done.stdout.splitlines()[-1]
    assert "passed" not in last and "skipped" not in last, last
