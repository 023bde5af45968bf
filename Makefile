# The README's commands. Both create .venv when it is missing and install from this repository.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_PATHS := dispatcher providers models tests $(wildcard bench)
# @novu/js for the inbox's end-to-end test, when Node is installed (else that test skips).
JS_STAMP := $(if $(shell command -v npm),tests/inbox_js/node_modules/.installed)

.PHONY: run test lint typecheck imports pytest bench openapi clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

tests/inbox_js/node_modules/.installed: tests/inbox_js/package.json tests/inbox_js/package-lock.json
	cd tests/inbox_js && npm ci --no-audit --no-fund --silent
	touch $@

run: $(STAMP)
	DISPATCHER_INBOX_EXAMPLE=true $(BIN)/dispatcher demo

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck imports pytest

bench: $(STAMP)
	$(BIN)/python -m bench

# The committed OpenAPI document of the HTTP API, regenerated from the application.
openapi: $(STAMP)
	$(BIN)/python -m dispatcher.api.openapi openapi.json

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
