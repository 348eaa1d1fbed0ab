# pipes-lambda-kit — every target installs what it needs first (virtualenv, Python deps, the pinned
# CDK CLI), so `make demo` and `make test` work on a fresh clone.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PYTEST_ARGS ?=

export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install demo test bench synth layer local clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(PY_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is needed (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[infra,local,dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(PY_STAMP) $(NODE_STAMP) ## create .venv, install Python deps and the pinned CDK CLI

layer: $(PY_STAMP) ## build (or reuse) the pipes layer zip
	$(BIN)/python -m layers.build

synth: install ## synthesize the stack with the pinned CDK CLI
	cdk synth --quiet

demo: install ## the main job: synthesize and show what the kit deploys
	$(BIN)/pipeskit demo

test: install ## run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install ## speed and memory benchmarks
	$(BIN)/python -m bench

local: install ## start the local AWS on localhost:4566 (Ctrl-C stops it)
	$(BIN)/pipeskit local

clean: ## remove build output (keeps .venv and node_modules)
	rm -rf build cdk.out .pytest_cache
