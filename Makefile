# Rumor — make run | test | lint | proto | chaos | bench
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROTOS := $(wildcard proto/rumor/v1/*.proto)
DATA_ROOT ?= .rumor
PYTEST_ARGS ?=
UNIT_JOBS ?= $(shell nproc)
# The tests that run real nodes: modules on this many processes, each module whole in one
# (its shared cluster starts once); they mostly wait on their nodes, so two share two cores.
INTEGRATION_JOBS ?= 2

.PHONY: run test test-tools unit integration lint format proto chaos power bench clean screenshots
SEEDS ?= 1 2 3
FUZZ_SCHEDULES ?= 10000
FUZZ_JOBS ?= $(shell nproc)
POWER_CUTS ?= 500
SCENARIOS ?= steady partition oneway crash_restart skew_fence skew_warn loss sessions

$(BIN)/rumor: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/rumor

## run: create .venv, install Rumor and start a local 3-node cluster (Ctrl-C stops it)
run: $(BIN)/rumor
	@echo "In another shell, for example:"
	@echo "  .venv/bin/rumor kv namespace create DEMO"
	@echo "  .venv/bin/rumor kv key put hello world --namespace DEMO"
	@echo "  .venv/bin/rumor kv --endpoint 127.0.0.1:7403 key get hello --namespace DEMO --text"
	@echo "  RUMOR_CLUSTER_SECRET_FILE=$(DATA_ROOT)/cluster/cluster-secret .venv/bin/rumor cluster status"
	$(BIN)/rumor cluster up --nodes 3 --data-root $(DATA_ROOT)/cluster --base-port 7401

## test: lint, then every test with durations: the unit tests (pure, no I/O) on every core, then the rest (real nodes), a module per process
test: $(BIN)/rumor lint test-tools
	$(BIN)/pytest tests/unit -n $(UNIT_JOBS) $(PYTEST_ARGS)
	$(BIN)/pytest --ignore=tests/unit -n $(INTEGRATION_JOBS) --dist loadfile $(PYTEST_ARGS)

# What the tests drive besides Python: Debian's Chromium (the console's browser
# tests), Node.js and npm (workerd, wrangler, the TypeScript SDK), gcc (the
# power-loss shim). Installed with apt-get when missing and we are root;
# otherwise the exact command to run is printed and the target fails.
TEST_TOOLS := /usr/bin/chromium:chromium node:nodejs npm:npm gcc:gcc
test-tools:
	@missing=""; for pair in $(TEST_TOOLS); do tool=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v $$tool >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing$$missing (the tests need them)"; \
			apt-get update -q && apt-get install -y -q $$missing; \
		else \
			echo "make test needs:$$missing — run: sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

unit: $(BIN)/rumor
	$(BIN)/pytest tests/unit -n $(UNIT_JOBS) $(PYTEST_ARGS)

integration: $(BIN)/rumor
	$(BIN)/pytest tests/integration -n $(INTEGRATION_JOBS) --dist loadfile $(PYTEST_ARGS)

## lint: ruff, mypy --strict and the import-linter layer contracts
lint: $(BIN)/rumor
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH=.mypy $(BIN)/mypy -p rumor.node -p rumor.client -p rumor.experiments -p rumor.bench
	MYPYPATH=.mypy $(BIN)/mypy tests
	$(BIN)/lint-imports

format: $(BIN)/rumor
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## chaos: every scenario with several seeds, 10,000 simulated fault schedules per durability mode, then $(POWER_CUTS) power cuts per mode (long)
chaos: $(BIN)/rumor
	@status=0; for scenario in $(SCENARIOS); do for seed in $(SEEDS); do \
		$(BIN)/rumor experiment run $$scenario --seed $$seed \
			--out experiments-out/chaos/$$scenario-$$seed || status=1; \
	done; done; \
	for durability in fsync wal; do \
		$(BIN)/rumor simulate --fuzz $(FUZZ_SCHEDULES) --seed 1 --durability $$durability --jobs $(FUZZ_JOBS) \
			--out experiments-out/chaos/fuzz-$$durability || status=1; \
	done; \
	$(MAKE) power || status=1; exit $$status

## power: $(POWER_CUTS) power cuts of a real node per durability mode (fsync must lose nothing)
power: $(BIN)/rumor
	RUMOR_POWER_CUTS=$(POWER_CUTS) $(BIN)/pytest -s tests/integration/test_power_loss.py $(PYTEST_ARGS)

## bench: every benchmark against its same-run baseline (long; bench/results/); first installs the peers benchmark's etcd, Redis and h2load (as root; else names the packages)
bench: $(BIN)/rumor
	$(BIN)/python -m rumor.bench.peers_servers
	$(BIN)/rumor bench all

## screenshots: the web console's screenshots for the README (docs/ui/), from a local 2-node cluster
screenshots: $(BIN)/rumor
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m tests.support.screenshots docs/ui

## proto: regenerate the committed stubs from proto/rumor/v1/*.proto
proto: $(BIN)/rumor
	$(BIN)/python -m grpc_tools.protoc -I proto --python_out=proto --pyi_out=proto \
		--grpc_python_out=proto $(PROTOS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
