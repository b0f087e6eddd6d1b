# Two commands on a fresh machine with Python 3.11+ and make: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench soak profile clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	CALENDLY_SVC_DEV=1 $(BIN)/python -m calendly_svc serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check calendly_svc tests
	$(BIN)/ruff format --check calendly_svc tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

# Both benchmarks always run; the target fails when either misses a target.
bench: $(STAMP)
	$(BIN)/python -m tests.bench.sync_bench; s=$$?; \
	$(BIN)/python -m tests.bench.ingest_bench; i=$$?; \
	exit $$(( s || i ))

soak: $(STAMP)
	$(BIN)/python -m tests.bench.soak --seconds 120

# py-spy flame graphs of the edge and the worker under the ingest benchmark's load (docs/profiles/)
profile: $(STAMP)
	$(BIN)/python -m tests.bench.profile --seconds 20 --out docs/profiles --label $(or $(LABEL),after)
