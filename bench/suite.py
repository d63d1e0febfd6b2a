"""The test suite's own time, as `make test` runs it (lint and bootstrap excluded).

A budgeted figure rather than a timed test: the suite has to stay fast as it grows, and
`make bench` is where a figure that can regress is watched.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Figure

ROOT = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 90.0


def run() -> list[Figure]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.monotonic() - started
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    passed = re.search(r"(\d+) passed", summary)
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        raise RuntimeError(f"the suite failed, so its time means nothing: {summary}\n" + "\n".join(failed))
    return [
        Figure("suite", "make test's suite, wall time (parallel workers)", seconds, "s", budget=BUDGET_SECONDS),
        Figure("suite", "  tests run", float(passed.group(1)) if passed else 0.0, "tests", budget=None),
    ]
