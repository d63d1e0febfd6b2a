"""`make assets`: copy the three Swagger UI files the docs page loads from the pinned package."""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path

import swagger_ui

from chalicelib.docs import VENDOR

FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "oauth2-redirect.html")


def main() -> None:
    source = Path(swagger_ui.__file__).resolve().parent / "static"
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(source / name, VENDOR / name)
    (VENDOR / "VERSION").write_text(f"swagger-ui-py {version('swagger-ui-py')}\n")
    print(f"contact-notes: Swagger UI assets from swagger-ui-py {version('swagger-ui-py')} in {VENDOR}")


if __name__ == "__main__":
    main()
