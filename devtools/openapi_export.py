"""`make openapi`: write the OpenAPI document generated from the code to openapi.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "openapi.json"


def render() -> str:
    from app import app
    from chalicelib.openapi import build_document

    return json.dumps(build_document(app.routes), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    TARGET.write_text(render(), encoding="utf-8")
    print(f"contact-notes: wrote {TARGET.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
