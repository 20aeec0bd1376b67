# The two commands of the README:
#   make run   - the main job on this machine (broker, topics, gateway, worker, embedded ClickHouse,
#                simulated chargers); flags through DEV_ARGS="--chargers 200"
#   make test  - the whole test suite against a real Kafka broker and the embedded ClickHouse engine
# Both set themselves up on a fresh machine: virtualenv, install, broker jars (and for the tests
# kustomize, built from the Go module proxy, to render the Kubernetes manifests).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test setup clean-local compile

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

test: setup .local/bin/kustomize
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
