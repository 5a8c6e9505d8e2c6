# `make run` serves hitl on http://127.0.0.1:8000; `make test` runs every check and test.
# Both set up everything they need first: the virtual environment in .venv and, for the
# browser tests, Debian's chromium.

VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# pytest keeps the test modules it rewrites (and its plugins': schemathesis alone has 244) as
# bytecode. With PYTHONDONTWRITEBYTECODE set in the environment it would rewrite them all again
# in each of its processes at every run, for 6 s of CPU each: the tests write bytecode.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/pytest

.PHONY: setup lock bytecode run test lint unit integration e2e bench clean

$(STAMP): pyproject.toml constraints.txt scripts/setup-venv
	scripts/setup-venv $(VENV)
	touch $(STAMP)

# Renew the pinned versions (constraints.txt) to the newest that pyproject.toml allows; then
# `make test`, and commit both if it passes.
lock:
	@test -x $(BIN)/uv || scripts/setup-venv $(VENV)
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 \
		--custom-compile-command 'make lock' -o constraints.txt

setup: $(STAMP)

# hitl's own modules compiled, as setup-venv compiles the packages: changed ones only.
bytecode: setup
	@$(BIN)/python -m compileall -q hitl tests bench >/dev/null

# The last line it prints is the URL to open. Settings: HITL_* variables (HITL_PORT=9000 make run)
# or flags (make run ARGS='--port 9000'); see docs/configuration.md.
run: bytecode
	@$(BIN)/hitl serve $(ARGS)

lint: setup
	$(BIN)/ruff check hitl tests bench
	$(BIN)/ruff format --check hitl tests bench
	$(BIN)/mypy

# The suite in TEST_JOBS processes (a test file each at a time: its module's servers are
# shared by its tests); most of a test's time is spent waiting, so more processes than cores.
# A test that hangs ends its process (pyproject.toml: faulthandler_exit_on_timeout), and that
# ends the run: pytest-xdist's replacement of a crashed process can wait for ever under
# --dist loadfile (pytest-xdist issues 784, 1323, 1327).
TEST_JOBS ?= 4

test: bytecode
	scripts/install-system-deps
	$(MAKE) lint
	$(PYTEST) -n $(TEST_JOBS) --dist loadfile --max-worker-restart 0

unit: bytecode
	$(PYTEST) tests/unit

integration: bytecode
	$(PYTEST) tests/integration

e2e: bytecode
	scripts/install-system-deps
	$(PYTEST) tests/e2e

bench: bytecode
	scripts/install-system-deps
	scripts/bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find hitl tests bench -name __pycache__ -prune -exec rm -rf {} +
