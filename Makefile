# Contact Notes: `make run` and `make test` are all a fresh machine needs (Python 3.11+ and make).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAGE ?= dev

.PHONY: run test prereqs lint tables bench openapi assets wheels package deploy install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever a requirements file changes. The project itself goes in editable, for
# its console script (contact-notes, the CLI); it is built with the setuptools the venv has
# when it has one (offline), else pip fetches one as it fetched the requirements.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -c "import setuptools, wheel" 2>/dev/null && isolation=--no-build-isolation; \
		$(BIN)/python -m pip install --quiet --no-deps $$isolation -e .
	touch $(STAMP)

ASSETS := chalicelib/static/swagger-ui/VERSION

# Swagger UI's three files, copied from the pinned package (not committed, not from a CDN).
$(ASSETS): $(STAMP)
	$(BIN)/python -m devtools.docs_assets

WHEELS := .cache/lambda-wheels/.complete
LAMBDA_PLATFORMS := --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux_2_26_aarch64

# The Lambda bundle's wheels (arm64, Python 3.11), fetched once so that packaging is offline.
$(WHEELS): requirements.txt | $(BIN)/python
	mkdir -p .cache/lambda-wheels
	$(BIN)/python -m pip download --quiet -r requirements.txt -d .cache/lambda-wheels
	$(BIN)/python -m pip download --quiet $(LAMBDA_PLATFORMS) --implementation cp --python-version 3.11 \
		--only-binary=:all: -r requirements.txt -d .cache/lambda-wheels
	touch $(WHEELS)

wheels: $(WHEELS)

install: $(STAMP) $(ASSETS)

assets: $(ASSETS)

## Serve the API on HOST:PORT (127.0.0.1:8000) with an embedded DynamoDB, live updates over
## WebSocket on HOST:WS_PORT (8001); Ctrl-C stops it.
run: $(STAMP) $(ASSETS)
	$(BIN)/python -m devtools.local_stack

## Create the tables on DYNAMODB_ENDPOINT (or AWS): idempotent.
tables: $(STAMP)
	$(BIN)/python -m devtools.tables

## Benchmarks: a table with budgets, bench/results.json (figures also kept in BENCHMARKS.md).
bench: $(STAMP) $(ASSETS) $(WHEELS)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Write the OpenAPI 3.1 document generated from the code to openapi.json (committed).
openapi: $(STAMP)
	$(BIN)/python -m devtools.openapi_export

## The deployable SAM template and bundle in build/$(STAGE) (STAGE=dev or prod), offline.
package: $(STAMP) $(ASSETS) $(WHEELS)
	$(BIN)/python -m devtools.package --stage $(STAGE)

## Deploy build/$(STAGE) with the AWS CLI (needs credentials and an artifacts bucket; see README).
deploy: package
	aws cloudformation package --template-file build/$(STAGE)/sam.json --s3-bucket $(BUCKET) \
		--output-template-file build/$(STAGE)/packaged.yaml
	aws cloudformation deploy --template-file build/$(STAGE)/packaged.yaml --stack-name contact-notes-$(STAGE) \
		--s3-bucket $(BUCKET) \
		--capabilities CAPABILITY_IAM --parameter-overrides $(PARAMETERS)

## What the suite drives from outside the virtualenv (Debian's chromium, curl): installed with
## apt-get where this machine can, else reported (their tests skip; REQUIRE_BROWSER=1 or
## REQUIRE_CURL=1 make that an error).
prereqs: | $(BIN)/python
	$(BIN)/python -m devtools.prereqs --state-dir $(VENV)

## Lint, type-check and run the whole suite offline.
test: prereqs lint $(ASSETS) $(WHEELS)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
