# tenantry: `make demo` runs it on a local control plane, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: help deps venv cluster cluster-down crds dashboards check-generated test unit integration lint demo clean bench chaos

help:
	@echo "make demo          local control plane + examples + operator in the foreground"
	@echo "make test          all tests (unit + integration on a real control plane)"
	@echo "make cluster       start the local control plane (.local/kubeconfig)"
	@echo "make cluster-down  stop it and remove its data"
	@echo "make crds          regenerate crds/ and charts/tenantry/crds/ from the API models"
	@echo "make dashboards    regenerate charts/tenantry/dashboards/ (Grafana JSON) from tenantry.dashboards"
	@echo "make bench         benchmarks on a local control plane (bench/results.json, .md, .png)"
	@echo "make chaos         the reliability scenarios at a larger scale"

deps:
	@bash hack/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

cluster: deps venv
	$(BIN)/python -m tenantry.devtools.cluster up

cluster-down: venv
	$(BIN)/python -m tenantry.devtools.cluster down

crds: venv
	$(BIN)/python -m tenantry.devtools.gencrds

dashboards: venv
	$(BIN)/python -m tenantry.devtools.gendashboards

# Fails when the committed CRDs or dashboard JSON differ from what the code generates now.
check-generated: venv
	$(BIN)/python -m tenantry.devtools.gencrds --check
	$(BIN)/python -m tenantry.devtools.gendashboards --check

lint: venv
	$(BIN)/lint-imports
	$(BIN)/ruff check operator tests

unit: venv
	$(BIN)/pytest -q tests/unit

integration: deps venv
	$(BIN)/python -m tenantry.devtools.cluster build
	$(BIN)/pytest -q tests/integration

test: deps venv
	$(BIN)/python -m tenantry.devtools.cluster build
	$(BIN)/pytest -q tests/unit tests/integration tests/e2e

demo: cluster
	@bash hack/demo.sh

clean: cluster-down
	rm -rf $(VENV) .pytest_cache .hypothesis

# The reliability scenarios of `make test`, bigger: 1,000 tenants, 20 SIGKILLs (prints what each did).
chaos: deps venv
	$(BIN)/python -m tenantry.devtools.cluster build
	TENANTRY_CHAOS=1 $(BIN)/pytest -q -s tests/integration/test_reliability.py

bench: deps venv
	$(BIN)/python -m tenantry.devtools.cluster build
	$(BIN)/python bench/run.py
