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
	@echo "make crds          regenerate crds/ and charts/tenantry/templates/crds/ from the API models"
	@echo "make dashboards    regenerate charts/tenantry/dashboards/ (Grafana JSON) from tenantry.dashboards"
	@echo "make bench         benchmarks on a local control plane (bench/results.json, .md, .png)"
	@echo "make chaos         the reliability scenarios at a larger scale"
	@echo "make lint          import layers, ruff, actionlint on .github/workflows"
	@echo "make lock          re-pin the image's Python packages with hashes (requirements/*.lock; UPGRADE=1: newest)"
	@echo "make release       offline: sdist, wheel, chart archives, SBOM and SHA256SUMS into dist/ (docs/release.md)"
	@echo "make release-venv  only the release tools, from the hashed locks (the release workflow's build job)"

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
	$(BIN)/actionlint .github/workflows/*.yaml

.PHONY: lock release release-venv
# The operator image's Python packages pinned with their hashes, for the Python of the Dockerfile's
# base image: requirements/operator.lock (pyproject's dependencies) and requirements/build.lock (the
# build backend); requirements/release.lock (requirements/release.in: the tools of `make release`). Needs
# the package index. Keeps the pins that still fit; UPGRADE=1 takes the newest.
lock: venv
	@py=$$(sed -n 's/^ARG PYTHON_IMAGE=python:\([0-9]*\.[0-9]*\)-.*/\1/p' Dockerfile); test -n "$$py" || \
	  { echo "Dockerfile: no ARG PYTHON_IMAGE=python:X.Y-..." >&2; exit 1; }; \
	for pair in pyproject.toml:operator requirements/build.in:build requirements/release.in:release; do \
	  $(BIN)/uv pip compile "$${pair%%:*}" --quiet --generate-hashes --python-version "$$py" \
	    --python-platform linux $(if $(UPGRADE),--upgrade) -o "requirements/$${pair##*:}.lock" || exit 1; \
	done

# The tools of `make release` and nothing else, each pinned with its hashes: the build backend
# (requirements/build.lock) and build, cyclonedx-bom, helm-python-sdk with what they need
# (requirements/release.lock), in a virtualenv of their own (pip refuses a file without its hash;
# `pip check`: the locks are complete). The release workflow's build job runs
# `make release-venv RELEASE_VENV=... && make release RELEASE_BIN=.../bin`; nothing from `make venv`.
RELEASE_VENV ?= .local/release-venv
release-venv:
	rm -rf $(RELEASE_VENV) && $(PYTHON) -m venv $(RELEASE_VENV)
	$(RELEASE_VENV)/bin/python -m pip install -q --require-hashes --no-deps \
	  -r requirements/build.lock -r requirements/release.lock
	$(RELEASE_VENV)/bin/python -m pip check

# Release artefacts into dist/, offline, with the file times of the last commit: the Python sdist and
# wheel, the chart archives (as `helm package`), the CycloneDX SBOM of the image's locked packages
# and SHA256SUMS. The image itself is built, signed and pushed by .github/workflows/release.yaml.
# RELEASE_BIN: the tools' bin/ (default: .venv's, installed by `make venv`; else `make release-venv`'s).
RELEASE_BIN ?= $(BIN)
release: SOURCE_DATE_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null)
release: VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' operator/tenantry/__init__.py)
release: $(if $(filter $(BIN),$(RELEASE_BIN)),venv)
	@test -n "$(VERSION)" && test -n "$(SOURCE_DATE_EPOCH)"
	rm -rf dist && mkdir -p dist
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(RELEASE_BIN)/python -m build --no-isolation --outdir dist .
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) PYTHONPATH=operator $(RELEASE_BIN)/python -m tenantry.devtools.package_chart --out dist
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) PYTHONWARNINGS=ignore $(RELEASE_BIN)/cyclonedx-py requirements \
	  requirements/operator.lock --pyproject pyproject.toml --output-reproducible \
	  -o dist/tenantry-operator-$(VERSION).cdx.json
	$(RELEASE_BIN)/python -c 'import json, sys; p, v = sys.argv[1:]; d = json.load(open(p)); \
	  d["metadata"]["component"]["version"] = v; open(p, "w").write(json.dumps(d, indent=2) + "\n")' \
	  dist/tenantry-operator-$(VERSION).cdx.json $(VERSION)
	cd dist && sha256sum $$(ls | grep -v '^SHA256SUMS$$') > SHA256SUMS
	@cat dist/SHA256SUMS

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
