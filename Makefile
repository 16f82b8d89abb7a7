# The README's two commands are `make up` and `make test`; both install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install up test lint bench chromium

$(BIN)/groundswell: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/groundswell

install: $(BIN)/groundswell

up: install
	$(BIN)/groundswell up

# The dashboard tests drive Debian's chromium through Playwright; install it once if it is missing.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: install chromium
	$(BIN)/ruff check streams models sinks config tests bench
	$(BIN)/mypy
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench.ingest
