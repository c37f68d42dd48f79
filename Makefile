# Tahsil: the usual entry points. Every target installs what it needs first.
# Works from any directory (`make -f path/to/Makefile run`): every path is the checkout's own,
# and every command runs in it.
ROOT   := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV   ?= $(ROOT)/.venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PY313  ?= $(shell pyenv prefix 3.13.0 2>/dev/null)/bin
# checkov pins many dependencies of its own: it lives in its own virtualenv, like aws-sam-cli in .ci/run.
CHECKOV_VENV    ?= $(HOME)/.cache/tahsil-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
IN_ROOT := cd "$(ROOT)" &&

.PHONY: install run run-live test unit integration chaos lint template-checks openapi bench build validate deploy clean

$(STAMP): $(ROOT)/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Tahsil needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(IN_ROOT) $(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)                      ## start the local gateway on 127.0.0.1:3000 (TAHSIL_PORT)
	$(IN_ROOT) $(BIN)/tahsil dev

run-live: $(STAMP)                 ## the same, with a fake Adyen as the demo merchant's live connector
	$(IN_ROOT) $(BIN)/tahsil dev --fake-adyen

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet "checkov==$(CHECKOV_VERSION)"
	@touch $(CHECKOV_STAMP)

test: $(STAMP) template-checks     ## template checks, import contracts, unit and integration tests
	$(IN_ROOT) $(BIN)/lint-imports
	$(IN_ROOT) $(BIN)/pytest -q -n auto --dist loadfile

template-checks: $(STAMP) $(CHECKOV_STAMP)  ## cfn-lint (informational rules too) and checkov, skips explained in Metadata
	$(IN_ROOT) $(BIN)/python scripts/check_template.py --checkov $(CHECKOV_VENV)/bin/checkov

unit: $(STAMP)
	$(IN_ROOT) $(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(IN_ROOT) $(BIN)/pytest -q tests/integration

chaos: $(STAMP)                    ## kill execution environments at random under mixed traffic; TAHSIL_CHAOS_SECONDS, _SEED, _CLIENTS, _KILL_EVERY
	$(IN_ROOT) $(BIN)/pytest -q -s tests/integration/test_chaos.py

lint: $(STAMP)
	$(IN_ROOT) $(BIN)/lint-imports
	$(IN_ROOT) $(BIN)/ruff check layers local functions tests scripts
	$(IN_ROOT) $(BIN)/cfn-lint --include-checks I -- template.yaml

openapi: $(STAMP)                  ## regenerate docs/openapi.json from the code
	$(IN_ROOT) $(BIN)/tahsil openapi

bench: $(STAMP)                    ## DynamoDB round trips, cold import, warm latency per endpoint; scale and cost
	$(IN_ROOT) $(BIN)/python scripts/bench.py
	$(IN_ROOT) $(BIN)/python scripts/bench_coldimport.py  # cold import on the built layer: before (8d3d855) and now

build:                             ## sam build (needs aws-sam-cli and Python 3.13 on PATH)
	$(IN_ROOT) PATH="$(PY313):$$PATH" sam build

validate:
	$(IN_ROOT) sam validate --lint

deploy: build
	$(IN_ROOT) sam deploy --config-env $(or $(ENV),dev)

clean:
	$(IN_ROOT) rm -rf $(VENV) .aws-sam .pytest_cache .bench
