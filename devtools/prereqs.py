"""`make test`'s bootstrap for what the suite needs from outside the virtualenv (stdlib only).

Each prerequisite is a Debian package that one test drives. A missing one is installed with
apt-get when this machine can (as root, or with passwordless sudo), saying so in one line.
A failed attempt leaves a stamp in the state directory (`.venv`) and is not retried until
the stamp is deleted (or `make clean`). Where nothing can be installed, one line says why,
and the test that needs it skips with the same reason. `REQUIRE_<NAME>=1` (CI sets them)
makes a missing prerequisite an error here and a failure in its test, never a skip.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"
FAILED_STAMP = "prereqs-install-failed"
APT_LOG = "prereqs-apt.log"
APT_TIMEOUT_SECONDS = 1800


def chromium_path() -> str:
    """The browser the /docs test drives: CHROMIUM_PATH, else Debian's chromium."""
    return os.environ.get("CHROMIUM_PATH") or DEFAULT_CHROMIUM


def _executable(path: str) -> str | None:
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


@dataclass(frozen=True)
class Prereq:
    name: str
    package: str  # the Debian package that provides it
    require_variable: str  # set to 1, a missing prerequisite is an error, never a skip
    used_by: str
    locate: Callable[[], str | None]  # the executable's path, or None when missing
    expected_at: Callable[[], str]  # where it was looked for, for the messages

    def required(self) -> bool:
        return os.environ.get(self.require_variable, "") not in {"", "0"}

    def missing(self) -> str:
        return f"{self.name} not found ({self.expected_at()}; Debian package {self.package})"


CHROMIUM = Prereq(
    name="chromium",
    package="chromium",
    require_variable="REQUIRE_BROWSER",
    used_by="the /docs browser test",
    locate=lambda: _executable(chromium_path()),
    expected_at=lambda: f"CHROMIUM_PATH={chromium_path()}",
)
CURL = Prereq(
    name="curl",
    package="curl",
    require_variable="REQUIRE_CURL",
    used_by="the README's curl flow test",
    locate=lambda: shutil.which("curl"),
    expected_at=lambda: "on PATH",
)
PREREQS = (CHROMIUM, CURL)


def installer() -> tuple[list[str], str]:
    """The command prefix that runs apt-get here, or ([], why it cannot)."""
    apt = shutil.which("apt-get")
    if apt is None:
        return [], "apt-get is not on PATH"
    if os.geteuid() == 0:
        return [apt], ""
    sudo = shutil.which("sudo")
    if sudo and _succeeds([sudo, "-n", "true"]):
        return [sudo, "-n", "DEBIAN_FRONTEND=noninteractive", apt], ""
    return [], "not root, and no passwordless sudo"


def _succeeds(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode == 0  # noqa: S603


def install(prefix: list[str], packages: list[str], log: Path) -> bool:
    """apt-get update, then install: True when both succeed. Output goes to `log`."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with log.open("w") as sink:
        for args in (["update", "-qq"], ["install", "-y", "-qq", *packages]):
            command = [*prefix, *args]  # apt-get's own path, found on PATH
            try:
                done = subprocess.run(  # noqa: S603 (apt-get from PATH, fixed arguments)
                    command, stdout=sink, stderr=subprocess.STDOUT, env=env, timeout=APT_TIMEOUT_SECONDS
                )
            except subprocess.TimeoutExpired:
                sink.write(f"\ncontact-notes: {' '.join(args)} took over {APT_TIMEOUT_SECONDS} s; stopped\n")
                return False
            if done.returncode != 0:
                return False
    return True


def report(missing: list[Prereq], reason: str) -> int:
    """One line per missing prerequisite; 1 when any of them is required."""
    status = 0
    for prereq in missing:
        if prereq.required():
            print(f"contact-notes: {prereq.missing()}: {reason}; {prereq.require_variable}=1 makes this an error")
            status = 1
        else:
            print(f"contact-notes: {prereq.missing()}: {reason}; {prereq.used_by} will be skipped")
    return status


def bootstrap(state_dir: Path) -> int:
    missing = [p for p in PREREQS if p.locate() is None]
    if not missing:
        return 0
    stamp, log = state_dir / FAILED_STAMP, state_dir / APT_LOG
    prefix, reason = installer()
    if stamp.exists():
        reason = f"an earlier apt-get run failed, see {log}; delete {stamp} to retry"
    if reason:
        return report(missing, f"cannot install it here ({reason})")
    packages = [p.package for p in missing]
    uses = ", ".join(p.used_by for p in missing)
    print(f"contact-notes: installing {' '.join(packages)} with apt-get, once (for {uses})", flush=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    if not install(prefix, packages, log):
        stamp.write_text(" ".join(packages) + "\n")
        return report(missing, f"apt-get failed, see {log}; not retried until {stamp} is deleted")
    still = [p for p in missing if p.locate() is None]
    if still:  # installed, yet not where we look (a CHROMIUM_PATH elsewhere): do not reinstall each run
        stamp.write_text(" ".join(p.package for p in still) + "\n")
    return report(still, f"still missing after installing its package; not retried until {stamp} is deleted")


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Check and install what the test suite needs from outside the virtualenv."
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".venv"), help="where a failed run is recorded")
    return bootstrap(parser.parse_args().state_dir)


if __name__ == "__main__":
    sys.exit(main())
