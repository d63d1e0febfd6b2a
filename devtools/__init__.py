"""Developer tooling (local stack, table creation). Not shipped to Lambda."""
