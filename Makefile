# Developer entry points. `make test` is what CI runs (.ci/run); `make dev` runs the operator locally.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The local-cluster harness and the images' Python modules are not part of the operator package.
export PYTHONPATH := $(CURDIR)/e2e:$(CURDIR)/images/simulator:$(CURDIR)/images/inference
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml images/simulator/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required: set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./images/simulator
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtualenv with the operator and dev dependencies

.PHONY: tools
tools: venv ## Provide the pinned control-plane binaries (cached in ~/.cache/deepseek-operator/tools)
	$(BIN)/python -m localcluster tools

.PHONY: lint
lint: venv ## ruff and mypy (strict)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy operator/deepseek_operator e2e/localcluster images/simulator/deepseek_simulator images/inference bench hack/dev.py

.PHONY: crds
crds: venv ## Regenerate crds/ (and the chart's copy) from the pydantic models
	$(BIN)/python -m deepseek_operator.crd
	cp crds/serving.deepseek-operator.io_deepseekdeployments.yaml charts/deepseek-operator/crds/

.PHONY: manifests
manifests: venv ## Regenerate manifests/base/ and the chart README's values table from the chart
	$(BIN)/python hack/chart.py manifests
	$(BIN)/python hack/chart.py readme

.PHONY: test
test: venv tools lint ## Run every test: unit, integration and e2e against the local cluster
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: e2e
e2e: venv tools ## The end-to-end suite (e2e/tests) on the local cluster
	$(BIN)/pytest e2e/tests $(PYTEST_ARGS)

.PHONY: e2e-kind
e2e-kind: venv ## The end-to-end suite on a kind cluster with real containers (needs Docker; KEEP_CLUSTER=1 keeps it)
	VENV=$(VENV) PYTEST_ARGS="$(PYTEST_ARGS)" bash hack/e2e-kind.sh

.PHONY: unit
unit: venv ## Unit tests only (no cluster)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: dev
dev: venv tools ## Local cluster + CRD + operator + a sample DeepSeekDeployment
	$(BIN)/python hack/dev.py $(DEV_ARGS)

.PHONY: load
load: venv ## Bounded load (48 clients, 2 minutes, loopback) on the front Service of a running `make dev`
	$(BIN)/python hack/dev.py --load $(DEV_ARGS)

.PHONY: cluster
cluster: venv tools ## Start a local cluster in .local-cluster/ and print the KUBECONFIG to export
	$(BIN)/python -m localcluster up

.PHONY: cluster-down
cluster-down: venv ## Stop the cluster started by `make cluster`
	$(BIN)/python -m localcluster down

.PHONY: bench
bench: venv tools ## Run the benchmarks (print figures)
	$(BIN)/python bench/simulator_throughput.py
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/operator $(BIN)/python bench/convergence.py
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/operator $(BIN)/python bench/live_plane.py
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/operator $(BIN)/python bench/predictive.py
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/operator $(BIN)/python bench/failover.py
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/operator $(BIN)/python bench/spot.py

# The images, as <name>=<Dockerfile>: the names the release workflow (.github/workflows/release.yaml)
# publishes under ghcr.io/deepseek-operator, which the chart and the CRD's defaults refer to.
IMAGE_DOCKERFILES := operator=operator/Dockerfile inference=images/inference/Dockerfile deepseek-simulator=images/simulator/Dockerfile
REGISTRY ?= ghcr.io/deepseek-operator
TAG ?= $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
IMAGES ?= operator inference deepseek-simulator
DOCKER ?= docker
DOCKER_BUILD_ARGS ?=
dockerfile_of = $(or $(patsubst $(1)=%,%,$(filter $(1)=%,$(IMAGE_DOCKERFILES))),$(error unknown image '$(1)': IMAGES takes operator, inference, deepseek-simulator))

.PHONY: images
images: ## Build REGISTRY/<image>:TAG with Docker for each of IMAGES (default: operator inference deepseek-simulator)
	$(foreach image,$(IMAGES),DOCKER_BUILDKIT=1 $(DOCKER) build --file $(call dockerfile_of,$(image)) --tag $(REGISTRY)/$(image):$(TAG) $(DOCKER_BUILD_ARGS) . &&) true

.PHONY: push-images
push-images: images ## Build, then push the images to REGISTRY (log in to it first)
	$(foreach image,$(IMAGES),$(DOCKER) push $(REGISTRY)/$(image):$(TAG) &&) true

.PHONY: clean
clean: ## Remove the virtualenv and caches of this checkout (not the tool cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .local-cluster
