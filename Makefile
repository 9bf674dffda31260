# Every target creates and fills its own virtual environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_DIR := tools/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
BUF := $(NODE_DIR)/node_modules/.bin/buf

.PHONY: run test lint typecheck protolint protos pytest lock clean startup bench stall bench-files

$(STAMP): requirements/dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Node tools: buf (proto lint) and the gRPC client libraries the Node client tests use.
$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --silent --no-audit --no-fund
	touch $(NODE_STAMP)

## run: the service on its embedded defaults (gRPC on 127.0.0.1:50051)
run: $(STAMP)
	$(BIN)/agent-containers serve

## test: lint, type check, proto lint and the whole pytest suite
test: lint typecheck protolint pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests migrations scripts examples
	$(BIN)/ruff format --check src tests migrations scripts examples

typecheck: $(STAMP)
	$(BIN)/mypy

protolint: $(NODE_STAMP)
	$(BUF) lint
	$(BUF) format --diff --exit-code

pytest: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest

## protos: regenerate generated/ from protos/
protos: $(STAMP)
	$(BIN)/python scripts/generate_protos.py

## lock: re-pin dependencies after editing pyproject.toml
lock: $(STAMP)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements/dev.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -o requirements/runtime.lock

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules

## startup: time from `serve` to SERVING and resident memory, on the embedded defaults
startup: $(STAMP)
	$(BIN)/python scripts/startup_figures.py

## bench: ResolveTool vs Health/Check throughput and latency at 1 and 16 calls in flight
bench: $(STAMP)
	$(BIN)/python scripts/bench.py

## stall: worst event-loop stall and ResolveTool latency while hostile requests arrive
stall: $(STAMP)
	$(BIN)/python scripts/event_loop_stall.py

## bench-files: file upload/download throughput through the service vs the SDK direct, and memory
bench-files: $(STAMP)
	$(BIN)/python scripts/bench_files.py
