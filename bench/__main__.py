"""`make bench`: run every benchmark, print the table, write bench/results.json; exit 1 on a MISS."""

from __future__ import annotations

import sys
import time

from bench import (
    audit,
    bundle,
    calls,
    coldstart,
    live,
    load,
    normalizer,
    overhead,
    scale,
    search,
    suite,
    transfer,
    webhooks,
)
from bench.report import print_table, write_markdown, write_results


def main() -> int:
    started = time.monotonic()
    figures = (
        coldstart.run()
        + calls.run()
        + scale.run()
        + search.run()
        + transfer.run()
        + webhooks.run()
        + overhead.run()
        + normalizer.run()
        + audit.run()
        + bundle.run()
        + load.run()
        + live.run()
        + suite.run()
    )
    print_table(figures)
    write_results(figures, "make bench")
    write_markdown(figures, "make bench", time.monotonic() - started)
    return 1 if any(f.verdict == "MISS" for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
