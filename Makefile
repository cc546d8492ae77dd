# A newcomer's two commands: `make demo` and `make test`. Each builds .venv from scratch
# on a fresh machine and installs everything it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip -q --disable-pip-version-check
DEMO_DIR ?= assay-demo
# One test worker more than there are cores: tests wait on the processes they start
# (servers, the CLI, Ray), and with one worker per core 18% of the CPU sat idle (vmstat,
# 2 cores); with three it was 3%, and the suite took 685 s instead of 732.
WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

.PHONY: demo test test-fast coverage lint unit bench bench-deps services browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[examples]'
	@touch $@

# The KServe SDK (conformance tests) goes in without its pins (pandas<3, protobuf<7, below
# ours); the `dev` extra lists what it needs to import.
$(VENV)/.dev: pyproject.toml constraints-dev.txt | $(BIN)/python
	$(PIP) install -c constraints-dev.txt -e '.[dev,examples]'
	$(PIP) install --no-deps 'kserve==0.21.0'
	@touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/assay demo $(DEMO_DIR)

# The services the tests talk to are started before a session; start any that is down.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	  echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(VENV)/.dev services browser
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup --durations=15

# Branch coverage of what runs in the test processes (not the CLI and servers they start):
# the least covered modules, then the total, which fails under the floor in pyproject.toml.
# Kept out of `make test`: on 2 cores the tracer takes the suite past 15 minutes.
coverage: $(VENV)/.dev services browser
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup --cov --cov-report= -q
	@$(BIN)/coverage report --fail-under=0 | sed -n '3,14p'
	$(BIN)/coverage report --format=total

# The dashboard's tests drive a real browser: Debian's Chromium (Playwright is told where).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: lint unit

# The inner loop: SQLite only, no lint (`make test` runs everything, as CI does).
test-fast: $(VENV)/.dev browser
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup --backends sqlite -q

# Evidently (bench/monitor.py's peer) pins pandas below 3, so it gets a virtualenv of its own.
bench-deps: $(VENV)/.dev .venv-evidently/.done
	$(PIP) install 'dvc>=3' 'mlflow>=3'
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

.venv-evidently/.done:
	$(PYTHON) -m venv .venv-evidently
	.venv-evidently/bin/python -m pip -q --disable-pip-version-check install 'evidently>=0.7' 'pandas<3' pyarrow
	@touch $@

bench: bench-deps browser
	@set -e; for f in bench/*.py; do \
	  [ "$$f" = bench/harness.py ] && continue; echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) .venv-evidently $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
