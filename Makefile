# pipes-lambda-kit — every target installs what it needs first (virtualenv, Python deps, the pinned
# CDK CLI and the Node.js 22 that runs it), so `make demo` and `make test` work on a fresh clone.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k layer"`.
PYTEST_ARGS ?=
# Port of the local AWS for `make demo` and `make local` (default: PIPESKIT_LOCAL_PORT, else 4566).
PORT ?=

# The pinned Node.js (node_modules/.bin/node, a 22.x LTS) runs the CDK CLI and jsii, not the system's.
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PORT_FLAG := $(if $(PORT),--port $(PORT),)

.PHONY: help install sandbox demo test bench synth layer local lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(PY_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "error: Python >= 3.11 is needed; run make PYTHON=python3.11 (or newer)")'
	@echo "• creating $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "• installing the kit and its Python dependencies into $(VENV) (a few minutes on a fresh machine) …"
	@start=$$(date +%s); \
	$(BIN)/python -m pip install --progress-bar off -e '.[cdk,local,dev]' \
	  | awk '/^Collecting /{n++; if (n % 20 == 0) {printf "  … %d packages resolved\n", n; fflush()}} /^Successfully installed/{print "  installed " NF-2 " packages"}'; \
	echo "  done in $$(( $$(date +%s) - start )) s"
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is needed to install the pinned CDK CLI and Node.js 22 (package.json); install Node.js with npm >= 9 (e.g. apt-get install npm) and re-run"; exit 1; }
	@npm_major=$$(npm --version | cut -d. -f1); [ "$$npm_major" -ge 9 ] || { echo "error: npm $$(npm --version) is too old; npm >= 9 is needed (package.json engines)"; exit 1; }
	@echo "• installing the pinned CDK CLI and Node.js 22 from package-lock.json (npm $$(npm --version)) …"
	@start=$$(date +%s); npm ci --no-audit --no-fund --loglevel=error; echo "  done in $$(( $$(date +%s) - start )) s: cdk $$(node_modules/.bin/cdk --version 2>/dev/null | cut -d' ' -f1), node $$(node_modules/.bin/node --version)"
	@touch $@

sandbox: ## bubblewrap, for execution environments isolated as on Lambda (installed where this user can)
	@if command -v bwrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "• installing bubblewrap (isolates the local AWS's execution environments) …"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } \
	    || echo "  could not install bubblewrap: the local AWS runs functions unisolated (it says so once)"; \
	else \
	  echo "note: bubblewrap is missing: install it (e.g. sudo apt-get install bubblewrap) to isolate the local AWS's"; \
	  echo "      execution environments; without it they run unisolated, with one warning"; \
	fi

install: $(NODE_STAMP) $(PY_STAMP) sandbox ## create .venv, install Python deps, the pinned CDK CLI, Node.js 22, bubblewrap

layer: $(PY_STAMP) ## build (or reuse) the reference deployment's pipes layer zip
	$(BIN)/pipeskit layer --requirements layers/requirements.txt

synth: install ## synthesize the reference stack with the pinned CDK CLI
	cdk synth --quiet

demo: install ## the main job: local AWS → cdk deploy → Dagster materializes assets on Lambda → summary (PORT=…)
	$(BIN)/python -m infra.demo $(PORT_FLAG)

# pytest workers: one more than the cores. The suite waits on deployed functions, deploys and log
# timeouts for about 40 % of its time, so a third worker on 2 cores cuts it from about 15 to 12 minutes.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))

test: install ## run the whole test suite (in parallel: TEST_WORKERS, cores + 1)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

bench: install ## speed and memory benchmarks (every one must run)
	$(BIN)/python -m bench

local: install ## serve the local AWS until Ctrl-C (PORT=…)
	$(BIN)/pipeskit local $(PORT_FLAG)

lint: $(PY_STAMP) ## ruff and the import contracts
	$(BIN)/ruff check pipeskit layers infra orchestration lambdas tests bench
	$(BIN)/lint-imports

clean: ## remove build output (keeps .venv, node_modules and the layer cache)
	rm -rf build cdk.out .pytest_cache dist
