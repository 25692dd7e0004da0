# The two commands of the README: `make demo` (set up, run the whole system on a demo) and
# `make test` (set up, run the tests). Everything else here is what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION := 2.13.0
BUF := $(VENV)/buf/node_modules/.bin/buf
# checkov in a venv of its own: its many pinned dependencies stay out of the project's.
CHECKOV := $(VENV)/checkov/bin/checkov
CHECKOV_VERSION := 3.3.30
# The README's Node client example runs in the tests.
NODE_GRPC := $(VENV)/node/node_modules/@grpc/grpc-js/package.json
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint redis proto

$(PY):
	python3 -m venv $(VENV)

# torch first, pinned: a bare requirement would pull the newest CUDA build (several GB).
$(VENV)/.installed: $(PY) pyproject.toml
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e ".[dev]"
	touch $@

$(BUF):
	command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q npm)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/buf @bufbuild/buf

$(NODE_GRPC):
	command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q npm)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node @grpc/grpc-js@1.14 @grpc/proto-loader@0.8

$(CHECKOV):
	python3 -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install -q checkov==$(CHECKOV_VERSION)

# Redis from the machine; install and start one when none answers.
redis:
	@if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
	  command -v redis-server >/dev/null || (apt-get update -q && apt-get install -y -q redis-server); \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; \
	  sleep 0.5; \
	fi
	@command -v redis-server >/dev/null || (apt-get update -q && apt-get install -y -q redis-server)

setup: $(VENV)/.installed $(BUF) $(NODE_GRPC) $(CHECKOV) redis

demo: setup
	$(VENV)/bin/recsys demo

test: setup
	PATH="$(abspath $(dir $(BUF))):$(abspath $(dir $(CHECKOV))):$$PATH" $(VENV)/bin/pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy services shared tests
	cd proto && ../$(BUF) lint

proto: $(VENV)/.installed
	$(PY) proto/generate.py
