"""`make tables`: create the tables on the configured endpoint (idempotent).

The counterpart of the original design's `alembic upgrade head`. Uses the same settings
as the service: DYNAMODB_ENDPOINT (or real AWS credentials), table names, region.
"""

from __future__ import annotations

from chalicelib.models import create_tables
from devtools.local_stack import env_file, load_dotenv_file, settings_or_exit


def main() -> None:
    load_dotenv_file(env_file())
    settings = settings_or_exit(serving=False)
    created = create_tables(settings)
    where = settings.dynamodb_endpoint or f"AWS {settings.aws_region}"
    print(f"contact-notes: tables on {where}: created {', '.join(created) or 'none (all exist)'}")


if __name__ == "__main__":
    main()
