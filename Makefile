# `make run` serves hitl on http://127.0.0.1:8000; `make test` runs every check and test.
# Both set up everything they need first: the virtual environment in .venv and, for the
# browser tests, Debian's chromium.

VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test lint unit integration e2e bench clean

$(STAMP): pyproject.toml scripts/setup-venv
	scripts/setup-venv $(VENV)
	touch $(STAMP)

setup: $(STAMP)

# The last line it prints is the URL to open. Settings: HITL_* variables (HITL_PORT=9000 make run)
# or flags (make run ARGS='--port 9000'); see docs/configuration.md.
run: setup
	@$(BIN)/hitl serve $(ARGS)

lint: setup
	$(BIN)/ruff check hitl tests bench
	$(BIN)/ruff format --check hitl tests bench
	$(BIN)/mypy

test: setup
	scripts/install-system-deps
	$(MAKE) lint
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

e2e: setup
	scripts/install-system-deps
	$(BIN)/pytest tests/e2e

bench: setup
	scripts/install-system-deps
	scripts/bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
