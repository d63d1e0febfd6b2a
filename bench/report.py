"""Figures, budgets, the printed table and bench/results.json."""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"
MARKDOWN = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
START, END = "<!-- figures:start (written by make bench) -->", "<!-- figures:end -->"


@dataclass
class Figure:
    group: str
    name: str
    value: float
    unit: str
    budget: float | None  # an upper bound (or the exact value when `exact`); None = reported only
    exact: bool = False

    @property
    def verdict(self) -> str:
        if self.budget is None:
            return "INFO"
        ok = self.value == self.budget if self.exact else self.value <= self.budget
        return "PASS" if ok else "MISS"


def print_table(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures)
    print(f"{'group':<12} {'figure':<{width}} {'value':>14} {'unit':<10} {'budget':>8}  verdict")
    for f in figures:
        budget = "-" if f.budget is None else ("=" if f.exact else "<=") + f"{f.budget:g}"
        print(f"{f.group:<12} {f.name:<{width}} {f.value:>14,.2f} {f.unit:<10} {budget:>8}  {f.verdict}")


def write_results(figures: list[Figure], command: str) -> None:
    payload = {
        "command": command,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "figures": [{**asdict(f), "verdict": f.verdict} for f in figures],
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")


def write_markdown(figures: list[Figure], command: str, seconds: float) -> None:
    """Replace the figures table in BENCHMARKS.md; the prose around it is kept as written."""
    rows = [
        f"Made with `{command}` ({int(seconds // 60)} min {int(seconds % 60)} s) on {platform.machine()}, "
        f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d', time.gmtime())}.",
        "",
        "| group | figure | value | budget | verdict |",
        "|---|---|---|---|---|",
    ]
    for f in figures:
        budget = "–" if f.budget is None else ("= " if f.exact else "≤ ") + f"{f.budget:g}"
        name = f.name.strip().replace("|", "\\|")
        rows.append(f"| {f.group} | {name} | {f.value:,.2f} {f.unit} | {budget} | {f.verdict} |")
    text = MARKDOWN.read_text()
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    MARKDOWN.write_text(before + START + "\n" + "\n".join(rows) + "\n" + END + after)
