"""`make package STAGE=dev|prod`: the deployable SAM template and Lambda bundle, offline.

Runs `chalice package` with infra/template.json merged in (plus the prod-only table
protections), using only the wheels prefetched into .cache/lambda-wheels by `make wheels`
(so packaging needs neither AWS credentials nor the network), then removes from the
bundle what the Lambda Python runtime already provides (boto3, botocore and their
dependencies): PynamoDB only needs a botocore, and the runtime's is used. Every module
left is shipped byte-compiled as well, since Lambda cannot cache what it compiles.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import importlib.util
import json
import marshal
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".cache" / "lambda-wheels"
MERGE_TEMPLATE = ROOT / "infra" / "template.json"
# Top-level names in the bundle that the python3.11 Lambda runtime already has.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "urllib3", "six")
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda puts the bundle: the paths tracebacks will show


@dataclass(frozen=True)
class Bundle:
    template: Path
    zip_path: Path
    zipped_bytes: int
    unzipped_bytes: int
    removed_bytes: int


def stage_template(stage: str) -> dict[str, Any]:
    """infra/template.json, with prod's tables protected from deletion."""
    template: dict[str, Any] = json.loads(MERGE_TEMPLATE.read_text())
    if stage == "prod":
        template = copy.deepcopy(template)
        for table in template["Resources"].values():
            if table.get("Type") != "AWS::DynamoDB::Table":
                continue  # every table, so a new one cannot miss the protection
            table["Properties"]["DeletionProtectionEnabled"] = True
            table["DeletionPolicy"] = table["UpdateReplacePolicy"] = "Retain"
    return template


def _runtime_provided(name: str) -> bool:
    top = name.split("/", 1)[0]
    base = top.split("-", 1)[0] if top.endswith(".dist-info") else top.removesuffix(".py")
    return base in RUNTIME_PROVIDED


def _pyc(source: bytes, path: str) -> bytes | None:
    """The module byte-compiled as an unchecked hash-based .pyc (PEP 552), or None if it does not compile.

    Lambda's /var/task is read-only, so Python can never cache what it compiles there: without
    these, every cold start compiles every module of the bundle from source. Unchecked, because
    the sources in a deployed bundle never change (and the zip's file times mean nothing).
    """
    try:
        code = compile(source, f"{LAMBDA_TASK_ROOT}/{path}", "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        return None  # e.g. a template file named .py in some package: Python never imports it
    flags = (0b01).to_bytes(4, "little")  # hash-based, not checked against the source
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)


def _pyc_entry(source: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """Where the runtime looks for a module's bytecode (no optimization level, no cache prefix),
    readable by all as Lambda requires (it does not run as the files' owner)."""
    folder, _, name = source.filename.rpartition("/")
    stem = name.removesuffix(".py")
    entry = zipfile.ZipInfo(f"{folder}/__pycache__/{stem}.{sys.implementation.cache_tag}.pyc".lstrip("/"))
    entry.date_time = source.date_time
    entry.external_attr = 0o100644 << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    return entry


def finish_bundle(zip_path: Path) -> int:
    """Rewrite the bundle without runtime-provided packages and with every module byte-compiled
    for this Python (see `check_runtime`); return the bytes removed."""
    finished = zip_path.with_suffix(".tmp")
    removed = 0
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(finished, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if _runtime_provided(info.filename):
                removed += info.file_size
                continue
            if "__pycache__/" in info.filename:
                continue  # the packaging machine's own caches: compiled afresh below
            data = source.read(info.filename)
            target.writestr(info, data)
            if info.filename.endswith(".py") and (pyc := _pyc(data, info.filename)) is not None:
                target.writestr(_pyc_entry(info), pyc)
    finished.replace(zip_path)
    return removed


def check_runtime(template: dict[str, Any]) -> None:
    """Bytecode is only good for the Python that made it: the functions' runtime must be ours."""
    ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
    runtimes = {
        r["Properties"].get("Runtime")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    if runtimes != {ours}:
        raise RuntimeError(f"the functions run {sorted(map(str, runtimes))} but the bytecode would be {ours}")


def package(stage: str, out: Path) -> Bundle:
    if not WHEELS.is_dir():
        sys.exit("contact-notes: no .cache/lambda-wheels; run `make wheels` (needs the package registry once)")
    out.mkdir(parents=True, exist_ok=True)
    merge = out / "merge-template.json"
    merge.write_text(json.dumps(stage_template(stage), indent=2))
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELS), "AWS_DEFAULT_REGION": "us-east-1"}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)  # packaging must not need (or use) credentials
    chalice = str(Path(sys.executable).parent / "chalice")
    command = [chalice, "--project-dir", str(ROOT), "package", "--stage", stage, "--merge-template", str(merge)]
    # chalice package caches its built zip under .chalice/deployments by content hash; two
    # packagers at once (parallel test workers, make bench beside make test) would write and
    # read the same file. One at a time per project.
    (ROOT / ".chalice" / "deployments").mkdir(exist_ok=True)
    with (ROOT / ".chalice" / "deployments" / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run([*command, str(out)], env=env, cwd=ROOT, capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"chalice package failed (missing wheels? run `make wheels`):\n{done.stderr[-4000:]}")
    zip_path = out / "deployment.zip"
    check_runtime(json.loads((out / "sam.json").read_text()))
    removed = finish_bundle(zip_path)
    with zipfile.ZipFile(zip_path) as bundle:
        unzipped = sum(info.file_size for info in bundle.infolist())
    return Bundle(out / "sam.json", zip_path, zip_path.stat().st_size, unzipped, removed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", choices=["dev", "prod"], required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    bundle = package(args.stage, args.out or ROOT / "build" / args.stage)
    zipped, unzipped, removed = (n / 1e6 for n in (bundle.zipped_bytes, bundle.unzipped_bytes, bundle.removed_bytes))
    print(f"contact-notes: {bundle.template}, deployment.zip {zipped:.1f} MB zipped, {unzipped:.1f} MB unzipped")
    print(f"contact-notes: left out {removed:.1f} MB that the Lambda runtime provides (boto3, botocore, ...)")


if __name__ == "__main__":
    main()
