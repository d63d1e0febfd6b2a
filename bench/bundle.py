"""Lambda bundle size from `chalice package` (offline, wheels from .cache/lambda-wheels)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.report import Figure


def run() -> list[Figure]:
    from devtools.package import package

    with tempfile.TemporaryDirectory() as out:
        bundle = package("dev", Path(out))
    mb = 1_000_000
    return [
        # Lambda's own limits are 50 MB zipped and 250 MB unzipped. About 5 MB of ours is the
        # modules' bytecode, which spares every cold start compiling them (BENCHMARKS.md).
        Figure("bundle", "deployment.zip, zipped", bundle.zipped_bytes / mb, "MB", budget=15.0),
        Figure("bundle", "deployment.zip, unzipped", bundle.unzipped_bytes / mb, "MB", budget=50.0),
        Figure("bundle", "left out: provided by the Lambda runtime (boto3, botocore, ...)",
               bundle.removed_bytes / mb, "MB", budget=None),
    ]  # fmt: skip
