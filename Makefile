# outagebot — every target sets itself up: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run console demo test lint format typecheck unit bench bench-quick chaos docker-check clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "outagebot needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## set up, then run the bot (console on a terminal, SQLite under ./data)
	$(BIN)/outagebot run

console: $(STAMP)  ## talk to the bot in this terminal
	$(BIN)/outagebot console

demo: $(STAMP)  ## replay a real outage offline: the alert lifecycle in a minute
	$(BIN)/outagebot demo

test: lint typecheck unit  ## everything CI checks

lint: $(STAMP)
	$(BIN)/ruff check bot cogs tests bench scripts
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff format --check bot cogs tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff check --fix bot cogs tests bench scripts
	$(BIN)/ruff format bot cogs tests bench scripts

bench: $(STAMP)  ## every benchmark at full size; JSON results in bench/results/
	@scripts=$$(ls bench/*.py 2>/dev/null | grep -v '/_'); \
	if [ -z "$$scripts" ]; then echo "no benchmarks yet"; exit 0; fi; \
	for s in $$scripts; do echo "== $$s"; $(BIN)/python $$s || exit 1; done

bench-quick: $(STAMP)  ## every benchmark at small sizes
	@scripts=$$(ls bench/*.py 2>/dev/null | grep -v '/_'); \
	if [ -z "$$scripts" ]; then echo "no benchmarks yet"; exit 0; fi; \
	for s in $$scripts; do echo "== $$s"; $(BIN)/python $$s --quick || exit 1; done

chaos: $(STAMP)  ## every tests/test_chaos_*.py, long: CHAOS_HOURS simulated hours, CHAOS_SCALE× load and kills
	@tests=$$(ls tests/test_chaos_*.py 2>/dev/null); \
	if [ -z "$$tests" ]; then echo "no chaos tests yet"; exit 0; fi; \
	CHAOS_HOURS=$${CHAOS_HOURS:-48} CHAOS_SCALE=$${CHAOS_SCALE:-10} \
		$(BIN)/pytest -m "slow or not slow" --timeout=$${CHAOS_TEST_TIMEOUT:-3600} $$tests

docker-check:  ## release check: build and run the image and docker-compose.yml (root; 3–8 min; docs/deploy.md)
	$(PYTHON) scripts/docker_check.py $(DOCKER_CHECK_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
