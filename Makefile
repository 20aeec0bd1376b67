# The two commands of the README:
#   make run   - the main job on this machine (broker, topics, gateway, worker, embedded ClickHouse,
#                simulated chargers); flags through DEV_ARGS="--chargers 200"
#   make test  - the type gate (mypy), then the whole test suite against a real Kafka broker and the embedded
#                ClickHouse engine
# Both set themselves up on a fresh machine: virtualenv, install, broker jars (and for the tests
# kustomize and promtool, built from the Go module proxy, to render the Kubernetes manifests and check and
# unit-test the alerts; Grafana's dashboard schema and the TypeScript compiler from the npm registry).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test typecheck setup clean-local compile

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

run: setup
	$(BIN)/ocpp-pipeline dev $(DEV_ARGS)

KUSTOMIZE_VERSION := v5.7.1

.local/bin/kustomize:
	GOBIN=$(CURDIR)/.local/bin GOTOOLCHAIN=local go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# Prometheus's promtool (the Go module of Prometheus 3.x), for `promtool check rules` / `test rules`. Service
# discovery is left out (remove_all_sd): the rule commands need none of it, and it halves the build.
PROMTOOL_VERSION := v0.316.0

.local/bin/promtool:
	GOBIN=$(CURDIR)/.local/bin GOTOOLCHAIN=local go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

# @grafana/schema and typescript, pinned by the lock file: the dashboards are type-checked against Grafana's schema.
GRAFANA_SCHEMA := .local/grafana-schema

$(GRAFANA_SCHEMA)/node_modules/.installed: infra/grafana/schema-check/package.json infra/grafana/schema-check/package-lock.json
	mkdir -p $(GRAFANA_SCHEMA)
	cp infra/grafana/schema-check/package.json infra/grafana/schema-check/package-lock.json $(GRAFANA_SCHEMA)/
	cd $(GRAFANA_SCHEMA) && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

# The type gate: what it checks, and how strictly, is [tool.mypy] in pyproject.toml (its `files`); no package list
# here. Its cache (.mypy_cache) makes a run after a small change take seconds (README, "The type gate").
typecheck: setup
	$(BIN)/mypy

test: setup .local/bin/kustomize .local/bin/promtool $(GRAFANA_SCHEMA)/node_modules/.installed typecheck
	$(BIN)/ocpp-pipeline kafka fetch
	$(BIN)/pytest $(PYTEST_ARGS)

# Opt-in: the per-frame core compiled with mypyc into .local/compiled, used when first on PYTHONPATH
# (PYTHONPATH=.local/compiled .venv/bin/ocpp-pipeline worker); needs gcc and Python's headers. BENCHMARKS.md.
compile: setup
	$(BIN)/pip install -q -e '.[compile]'
	$(BIN)/python -m infra.compiled_core .local/compiled --if-stale

clean-local:
	$(BIN)/ocpp-pipeline kafka stop || true
	rm -rf .local
