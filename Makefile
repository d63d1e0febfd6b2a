# Contact Notes: `make run` and `make test` are all a fresh machine needs (Python 3.11+ and make).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAGE ?= local

.PHONY: run test lint tables bench openapi assets install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever a requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

ASSETS := chalicelib/static/swagger-ui/VERSION

# Swagger UI's three files, copied from the pinned package (not committed, not from a CDN).
$(ASSETS): $(STAMP)
	$(BIN)/python -m devtools.docs_assets

install: $(STAMP) $(ASSETS)

assets: $(ASSETS)

## Serve the API on HOST:PORT (127.0.0.1:8000) with an embedded DynamoDB; Ctrl-C stops it.
run: $(STAMP) $(ASSETS)
	$(BIN)/python -m devtools.local_stack

## Create the tables on DYNAMODB_ENDPOINT (or AWS): idempotent.
tables: $(STAMP)
	$(BIN)/python -m devtools.tables

## Benchmarks: a table with budgets, bench/results.json (figures also kept in BENCHMARKS.md).
bench: $(STAMP) $(ASSETS)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Write the OpenAPI 3.1 document generated from the code to openapi.json (committed).
openapi: $(STAMP)
	$(BIN)/python -m devtools.openapi_export

## Lint, type-check and run the whole suite offline (the browser test needs Debian's chromium).
test: lint $(ASSETS)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
