"""The interactive docs page (/docs): Swagger UI served by the API itself, no CDN.

The Swagger UI files come from the pinned `swagger-ui-py` package and are copied next to
this module at build time (`make assets`); only the few files the page loads ship with
the Lambda. Our own start-up script is a file too, so the page's Content-Security-Policy
allows scripts and styles from this origin only.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "swagger-ui"
ASSETS = {
    "swagger-ui-bundle.js": (VENDOR, "text/javascript; charset=utf-8"),
    "swagger-ui.css": (VENDOR, "text/css; charset=utf-8"),
    "oauth2-redirect.html": (VENDOR, "text/html; charset=utf-8"),
    "docs-init.js": (STATIC, "text/javascript; charset=utf-8"),
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Contact Notes API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/docs-init.js"></script>
</body>
</html>
"""


def asset(name: str) -> tuple[str, str] | None:
    """(text, content type) of a docs asset, or None for any other name."""
    return _read(name) if name in ASSETS else None  # unknown names must not evict the cache


@lru_cache(maxsize=len(ASSETS))
def _read(name: str) -> tuple[str, str]:
    folder, content_type = ASSETS[name]
    return (folder / name).read_text(encoding="utf-8"), content_type
