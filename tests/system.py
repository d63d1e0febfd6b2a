"""System tools the suite drives from outside the virtualenv (see devtools/prereqs.py)."""

from __future__ import annotations

import pytest

from devtools.prereqs import Prereq


def system_tool(prereq: Prereq) -> str:
    """The tool's path; else a skip with the reason, or a failure under REQUIRE_<NAME>=1."""
    path = prereq.locate()
    if path is not None:
        return path
    if prereq.required():
        pytest.fail(f"{prereq.missing()}, and {prereq.require_variable}=1 requires it", pytrace=False)
    pytest.skip(f"{prereq.missing()}; `make test` installs it where it can ({prereq.require_variable}=1 to require)")
