# Tahsil: the usual entry points. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PY313  ?= $(shell pyenv prefix 3.13.0 2>/dev/null)/bin

.PHONY: install run test unit integration lint openapi bench build validate deploy clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Tahsil needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)                      ## start the local gateway on 127.0.0.1:3000 (TAHSIL_PORT)
	$(BIN)/tahsil dev

test: $(STAMP)                     ## import contracts, unit and integration tests
	$(BIN)/lint-imports
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check layers local functions tests scripts
	$(BIN)/cfn-lint template.yaml

openapi: $(STAMP)                  ## regenerate docs/openapi.json from the code
	$(BIN)/tahsil openapi

bench: $(STAMP)                    ## DynamoDB round trips, cold import, warm latency per endpoint; scale and cost
	$(BIN)/python scripts/bench.py

build:                             ## sam build (needs aws-sam-cli and Python 3.13 on PATH)
	PATH="$(PY313):$$PATH" sam build

validate:
	sam validate --lint

deploy: build
	sam deploy --config-env $(or $(ENV),dev)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .bench
