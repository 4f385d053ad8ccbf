# Every target sets itself up: a fresh clone needs only `make serve` or `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
SAM_VENV ?= .venv-sam
# The SageMaker PyTorch container's serving stack (Python 3.12), for tests/serving_stack and bench/endpoint_load.py.
SERVING_VENV ?= .venv-serving
SERVING_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12.*/bin/python) python3.12)
PY := $(VENV)/bin/python
# pip's local mirrors print one warning per missing package; keep real errors visible.
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }
ARGS ?=

.PHONY: help venv sam-venv serving-venv java browser-deps container-deps serve stack test test-python test-containers lint template-check bench clean

help:
	@echo "make serve   - set up .venv and run the local server on http://127.0.0.1:8000 (tiny-shapes model)"
	@echo "make stack   - the local production stack: sam local start-api -> Lambda containers -> our serving image"
	@echo "make test    - set up .venv and .venv-sam, then lint, run every test (the container tests: make test-containers) and check the SAM template"
	@echo "make bench   - run the CPU benchmarks in bench/ (minutes)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q -e ".[lambda,local,dev]" 2>&1 | $(QUIET_PIP)
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q -r requirements-sam.txt 2>&1 | $(QUIET_PIP)
	touch $@

# The browser tests drive Debian's Chromium with its chromedriver (never a browser a tool downloads) and
# bundle the official OpenAI JS SDK with esbuild, both pinned in tests/browser/js/package-lock.json.
BROWSER_JS := tests/browser/js
$(BROWSER_JS)/node_modules/.installed: $(BROWSER_JS)/package-lock.json
	cd $(BROWSER_JS) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

browser-deps: $(BROWSER_JS)/node_modules/.installed
	if ! { command -v chromium || command -v google-chrome; } >/dev/null \
	  || ! { command -v chromedriver || ls "$${CHROMEWEBDRIVER:-/nonexistent}/chromedriver"; } >/dev/null 2>&1; then \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# TorchServe runs on Java 17 (Debian's openjdk-17-jre-headless; CI runs as root).
java:
	command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }

# Several GB (torch's CUDA wheels come along) and ~3 min from PyPI; only the container's own packages.
$(SERVING_VENV)/.installed: requirements-serving.txt
	test -x $(SERVING_VENV)/bin/python || $(SERVING_PYTHON) -m venv $(SERVING_VENV)
	$(SERVING_VENV)/bin/python -m pip install -q -r requirements-serving.txt 2>&1 | $(QUIET_PIP)
	touch $@

# The container tests and `make stack`: Debian's Docker engine (started by the harness where none runs),
# debootstrap for the base images built from Debian's packages, curl; qemu for arm64 functions (optional).
container-deps:
	if ! command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1 || ! command -v debootstrap >/dev/null \
	  || ! command -v curl >/dev/null; then \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap curl; \
	fi

venv: $(VENV)/.installed
sam-venv: $(SAM_VENV)/.installed
serving-venv: java $(SERVING_VENV)/.installed

serve: venv
	$(PY) -m local_server $(ARGS)

stack: venv sam-venv container-deps
	$(PY) -m containers.stack --sam-venv $(abspath $(SAM_VENV)) $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint endpoint_server/Dockerfile endpoint_server/Dockerfile.cpu

# REQUIRE_SERVING_STACK=1: the serving-stack tests fail instead of skipping when the stack is missing.
test-python: venv browser-deps serving-venv
	REQUIRE_SERVING_STACK=1 SERVING_VENV=$(abspath $(SERVING_VENV)) $(PY) -m pytest --ignore=tests/containers

# The stack in Lambda containers under SAM and our serving image under the SageMaker contract (minutes on a
# fresh machine: it builds the base images). After test-python, whose serving venv fills pip's cache with torch.
test-containers: venv sam-venv container-deps
	CONTAINER_TESTS=1 SAM_VENV=$(abspath $(SAM_VENV)) $(PY) -m pytest tests/containers $(ARGS)

template-check: sam-venv
	SAM_VENV=$(SAM_VENV) bash scripts/check_template.sh

test: lint test-python template-check test-containers

bench: venv
	$(PY) bench/handler_overhead.py
	$(PY) bench/model_throughput.py
	$(PY) bench/local_server_load.py
	$(PY) bench/corpus.py

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache
