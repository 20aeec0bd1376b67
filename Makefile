# The two commands of the README:
#   make run   - the main job on this machine (broker, topics, gateway, worker, embedded ClickHouse,
#                simulated chargers); flags through DEV_ARGS="--chargers 200"
#   make test  - the type gate (mypy), then the whole test suite against a real Kafka broker and the embedded
#                ClickHouse engine
# Both set themselves up on a fresh machine: virtualenv, install, broker jars (and for the tests
# kustomize, built from the Go module proxy, to render the Kubernetes manifests).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test typecheck setup clean-local

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

# The type gate: what it checks, and how strictly, is [tool.mypy] in pyproject.toml (its `files`); no package list
# here. Its cache (.mypy_cache) makes a run after a small change take seconds (README, "The type gate").
typecheck: setup
	$(BIN)/mypy

test: setup .local/bin/kustomize typecheck
	$(BIN)/ocpp-pipeline kafka fetch
	$(BIN)/pytest $(PYTEST_ARGS)

clean-local:
	$(BIN)/ocpp-pipeline kafka stop || true
	rm -rf .local
