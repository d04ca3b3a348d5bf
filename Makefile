# wfops — one command to set up, one to test, one to run the demo.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
APP := sandbox-app
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
GUESTS ?= 3000
# The tests wait on subprocesses and servers far more than on the CPU: three workers fit two cores.
PYTEST_WORKERS ?= 3

.PHONY: help setup demo test lint pytest molecule bench sandbox-up sandbox-down sandbox-status clean

help: ## list every target
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.installed $(APP)/node_modules/.installed ## install system packages (apt, as root), the pinned venv and the sandbox app

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml scripts/setup-system.sh
	@bash scripts/setup-system.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

$(APP)/node_modules/.installed: $(APP)/package.json $(APP)/package-lock.json
	@bash scripts/setup-system.sh
	@cd $(APP) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: setup ## the whole release against the local sandbox, then its summary
	@$(BIN)/wfops sandbox up --guests $(GUESTS)
	@$(BIN)/wfops release --env local --ref demo
	@$(BIN)/wfops sandbox status

test: setup lint pytest molecule ## everything: ruff, ansible-lint (production profile), pytest, molecule

lint: setup ## ruff and ansible-lint
	$(BIN)/ruff check src tests bench files plugins
	$(BIN)/ruff format --check src tests bench files plugins
	$(BIN)/ansible-lint --profile production

pytest: setup ## the pytest suite (starts its own PostgreSQL clusters)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

molecule: setup ## every molecule scenario (one per role), delegated driver on localhost, three at a time
	@ls molecule/*/molecule.yml | xargs -n1 dirname | xargs -n1 basename | \
	  xargs -P $(PYTEST_WORKERS) -I{} sh -c '$(BIN)/molecule test -s {} > .molecule-{}.log 2>&1 \
	    && echo "molecule {}: ok" || { echo "molecule {}: FAILED"; cat .molecule-{}.log; exit 1; }'
	@rm -f .molecule-*.log

# The cost curve (issue 24): each size its own sandbox under /tmp, seeded once (10M: ~10 min) and brought down after.
BENCH_SIZES ?= 250000,1000000,3000000,10000000
bench: setup ## the cost curve at production sizes (by hand, not in make test): bench/RESULTS.md, bench/curve.png
	$(BIN)/python -m bench --sizes $(BENCH_SIZES) --runs 1 --scenarios release,rollback,normalize,backup,migrate

sandbox-up: setup ## start the local sandbox (GUESTS=N)
	$(BIN)/wfops sandbox up --guests $(GUESTS)

sandbox-down: setup ## stop the local sandbox and delete its data
	$(BIN)/wfops sandbox down

sandbox-status: setup ## show the sandbox database, migration head and legacy counts
	$(BIN)/wfops sandbox status

clean: ## remove the venv, the sandbox, run artifacts and node_modules
	-@test -x $(BIN)/wfops && $(BIN)/wfops sandbox down >/dev/null 2>&1 || true
	rm -rf $(VENV) .sandbox runs $(APP)/node_modules $(APP)/dist .pytest_cache .ruff_cache
