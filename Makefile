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
# The tests parse the event contracts (shared/contracts/asyncapi.yaml) with the official AsyncAPI parser.
NODE_ASYNCAPI := $(VENV)/node/node_modules/@asyncapi/parser/package.json
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint redis proto contracts promtool

$(PY):
	python3 -m venv $(VENV)

# torch first, pinned: a bare requirement would pull the newest CUDA build (several GB). The light
# client (shared/client) is a distribution of its own that the project requires: named in the same
# command, pip takes it from here instead of looking for recsys-client on an index.
$(VENV)/.installed: $(PY) pyproject.toml shared/client/pyproject.toml
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e shared/client -e ".[dev]"
	touch $@

$(BUF):
	command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q npm)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/buf @bufbuild/buf

$(NODE_GRPC):
	command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q npm)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node @grpc/grpc-js@1.14 @grpc/proto-loader@0.8

# After $(NODE_GRPC): two npm installs into one prefix must not run at once.
$(NODE_ASYNCAPI): | $(NODE_GRPC)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node @asyncapi/parser@3.6

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

# promtool checks and unit-tests the alert rules (Debian's prometheus package has it).
promtool:
	@command -v promtool >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends prometheus)

setup: $(VENV)/.installed $(BUF) $(NODE_GRPC) $(NODE_ASYNCAPI) $(CHECKOV) redis promtool

demo: setup
	$(VENV)/bin/recsys demo

test: setup
	PATH="$(abspath $(dir $(BUF))):$(abspath $(dir $(CHECKOV))):$$PATH" $(VENV)/bin/pytest -q -p no:cacheprovider

# buf breaking compares the protos with the previous commit's. A shallow clone of depth 1 or a
# repository with one commit has no HEAD~1 (buf then fails to clone it), so there it compares with
# HEAD: only uncommitted changes are checked. tests/shared/test_proto_compat.py does the same in `make test`.
lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy services shared tests
	cd proto && ../$(BUF) lint
	$(VENV)/bin/hadolint deploy/Dockerfile
	$(BUF) breaking proto --against ".git#subdir=proto,ref=$$(git rev-parse -q --verify 'HEAD~1^{commit}' >/dev/null && echo HEAD~1 || echo HEAD)"
	$(VENV)/bin/recsys contracts --check

proto: $(VENV)/.installed
	$(PY) proto/generate.py

# shared/contracts: the event streams' AsyncAPI document and JSON Schemas, from the event models.
contracts: $(VENV)/.installed
	$(VENV)/bin/recsys contracts

# The image's Python packages, pinned by version and sha256 (deploy/README.md, "Reproducible builds"):
# deploy/requirements.lock with torch's CPU build, deploy/requirements-cuda.lock with PyPI's CUDA one.
# Resolved for the image's Python (CPython 3.11.15 on x86_64 Linux, as in its base image) whatever
# machine runs it. The inputs: the extras the image installs, the build backend of the two local
# projects (they install after the lock, --no-deps --no-build-isolation), torch. Pins already in a
# lock stay; `make lock LOCK_ARGS=--upgrade` (or --upgrade-package NAME) moves them.
LOCK_ARGS ?=
# PyTorch's CPU index, where uv reads torch (pyproject.toml, [tool.uv.sources]) and the lock sends pip.
# `make lock TORCH_CPU_INDEX=URL` reads it from a mirror instead; the lock still names PyTorch's.
PYTORCH_CPU := https://download.pytorch.org/whl/cpu
TORCH_CPU_INDEX ?= $(PYTORCH_CPU)
define LOCK
printf '%s\n' 'setuptools>=69' wheel ./shared/client $(2) | $(VENV)/bin/uv pip compile --quiet pyproject.toml - \
  --extra all --no-emit-package recsys-client --python-version 3.11.15 --python-platform x86_64-manylinux_2_28 \
  --only-binary :all: --generate-hashes --emit-index-url --index-url https://pypi.org/simple \
  --custom-compile-command "make lock" $(3) $(LOCK_ARGS) -o $(1)
endef

.PHONY: lock
lock: $(VENV)/.installed
	$(call LOCK,deploy/requirements.lock,torch==$(TORCH_VERSION)+cpu,--index pytorch-cpu=$(TORCH_CPU_INDEX))
	sed 's#^--extra-index-url $(TORCH_CPU_INDEX)$$#--extra-index-url $(PYTORCH_CPU)#' deploy/requirements.lock > deploy/requirements.lock.new
	mv deploy/requirements.lock.new deploy/requirements.lock
	$(call LOCK,deploy/requirements-cuda.lock,torch==$(TORCH_VERSION),--no-sources)
