# The README's two commands are `make up` and `make test`; both install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install up test lint bench

$(BIN)/groundswell: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/groundswell

install: $(BIN)/groundswell

up: install
	$(BIN)/groundswell up

test: install
	$(BIN)/ruff check streams models sinks config tests bench
	$(BIN)/mypy
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench.ingest
