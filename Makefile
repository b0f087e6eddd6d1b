# Two commands on a fresh machine with Python 3.11+ and make: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# promtool (alert rule checks and unit tests): Debian's prometheus package, downloaded and
# unpacked into .venv/tools once; where apt-get is missing the rule tests skip (CI=true: fail).
PROMTOOL := $(VENV)/tools/promtool

.PHONY: run test lint bench soak profile clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	CALENDLY_SVC_DEV=1 $(BIN)/python -m calendly_svc serve

test: $(STAMP) $(PROMTOOL)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check calendly_svc tests
	$(BIN)/ruff format --check calendly_svc tests
	$(BIN)/mypy

# apt-get download needs no root; a machine that never ran `apt-get update` (root) gets one.
$(PROMTOOL):
	@mkdir -p $(VENV)/tools/deb
	@cd $(VENV)/tools/deb && rm -f prometheus_*.deb && \
	  { apt-get download -q prometheus >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get download -q prometheus >/dev/null 2>&1; }; } && \
	  dpkg-deb -x prometheus_*.deb unpacked && mv unpacked/usr/bin/promtool ../promtool && \
	  echo "promtool: $$(../promtool --version 2>&1 | head -1)" || \
	  echo "promtool: not available (apt-get download prometheus failed); rule tests will skip"
	@rm -rf $(VENV)/tools/deb

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

# Both benchmarks always run; the target fails when either misses a target.
bench: $(STAMP)
	$(BIN)/python -m tests.bench.sync_bench; s=$$?; \
	$(BIN)/python -m tests.bench.ingest_bench; i=$$?; \
	exit $$(( s || i ))

soak: $(STAMP)
	$(BIN)/python -m tests.bench.soak --seconds 120

# py-spy flame graphs of the edge and the worker, and Postgres CPU per statement, under the ingest
# benchmark's load (docs/profiles/)
profile: $(STAMP)
	$(BIN)/python -m tests.bench.profile --seconds 20 --out docs/profiles --label $(or $(LABEL),after)
