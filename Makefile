# Entry points for developers and CI. `make setup` installs everything the tests use and is
# cheap to re-run: each step is a file target that is rebuilt only when its inputs change.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
TOOLS_BIN := $(CURDIR)/.tools/bin
RUFF_VERSION := 0.16.9

# Pinned helm 3 and 4 and kubectl come first; tools/install_prometheus.sh puts the rest in /usr/bin.
export PATH := $(TOOLS_BIN):$(PATH)
export OBSERVATORY_UPSTREAM_DIR ?= $(CURDIR)/../shared/upstream
export PIP_DISABLE_PIP_VERSION_CHECK := 1

VENV_STAMP := $(VENV)/.observatory-installed
HELM_BINS := $(TOOLS_BIN)/helm $(TOOLS_BIN)/helm4 $(TOOLS_BIN)/kubectl

.PHONY: setup test demo notebooks crds lint prometheus-tools bench-slo-eval

setup: $(VENV_STAMP) $(HELM_BINS) prometheus-tools

# The stamp lives inside the venv so that deleting .venv also forgets the install.
$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "need Python 3.11+, got " + sys.version)'
	$(PYTHON) -m venv $(VENV)

$(VENV_STAMP): operator/pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e 'operator[dev]'
	touch $@

# Versions are pinned inside the script, so editing it re-installs.
$(HELM_BINS) &: tools/install_helm.py | $(VENV)/bin/python
	$(VENV)/bin/python tools/install_helm.py --dest $(TOOLS_BIN)

# Phony but cheap: the script only calls apt-get when a binary is missing from PATH.
prometheus-tools:
	@bash tools/install_prometheus.sh

test: setup
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup --durations=15 $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/observatory demo

# The notebooks, executed headless with the venv's kernel against the stack `observatory local up`
# runs (or one started for the run); executed copies in .local/notebooks/.
notebooks: setup
	$(VENV)/bin/observatory local notebooks

# Issue 7's numbers: SLO rule evaluation cost and alerting equivalence on a real Prometheus (~20 min).
bench-slo-eval: setup
	bash bench/slo_eval/run.sh

crds: $(VENV_STAMP)
	$(VENV)/bin/observatory crds --out crds/ --out charts/observatory/crds/
	$(VENV)/bin/observatory reference --out docs/reference.md

$(VENV)/.ruff-$(RUFF_VERSION): | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet 'ruff==$(RUFF_VERSION)'
	touch $@

lint: $(VENV)/.ruff-$(RUFF_VERSION)
	$(VENV)/bin/ruff check operator tests tools

# Optional kind/Docker targets (kind-up, deploy, e2e, ...); `-` because the file is optional.
-include mk/kind.mk
