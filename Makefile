# Two commands matter: `make run` and `make test`. Everything else here serves them.
# All tools live in the project's own .venv; nothing is installed globally and root is not needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(VENV)/.deps-installed
PORT   ?= 8080
# The API server (UI) listens on this address only; HOST=0.0.0.0 makes it reachable from other machines.
HOST   ?= 127.0.0.1
SANDBOX_PORT ?= 8765
# local: Airflow's LocalExecutor; celery: Redis (on REDIS_PORT) and two Celery workers, queues default and heavy
EXECUTOR ?= local
REDIS_PORT ?= 6380
# Two workers: one per core on the target machines. Override with `make test PYTEST_WORKERS=0`. Each module goes
# whole to one worker (loadscope: its module fixtures are built once), in the order tests/conftest.py gives (the
# stack and slow modules first; xdist would otherwise order modules by test count and start the 1-test walk last).
PYTEST_WORKERS ?= 2

.PHONY: run stop test lint format lock bench-sync bench-celery clean venv browser

venv: $(DEPS)

# The product (include/cdp) and, editable beside it, the sandbox (sandbox/: the vendor stand-ins, `cdp sandbox`
# and `cdp run`), a development tool the production image never gets.
$(DEPS): requirements.txt requirements-dev.txt pyproject.toml sandbox/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed (found %s); set PYTHON=python3.12 or similar" % sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet -p $(BIN)/python -r requirements-dev.txt
	$(BIN)/uv pip install --quiet -p $(BIN)/python --no-deps -e . -e sandbox
	touch $@

## run: the warehouse, its schema, the vendor sandbox and Airflow (UI on http://localhost:$(PORT)) with every DAG;
## Ctrl-C stops Airflow and the sandbox. `make run EXECUTOR=celery`: the CeleryExecutor with Redis and two workers
run: $(DEPS)
	$(BIN)/cdp run --port $(PORT) --host $(HOST) --sandbox-port $(SANDBOX_PORT) --executor $(EXECUTOR) \
		--redis-port $(REDIS_PORT)

## stop: stop what `make run` started (also the leftovers of a crashed run) and the embedded warehouse
stop:
	@if [ -x $(BIN)/cdp ]; then $(BIN)/cdp stop; else echo "no .venv: nothing was started"; fi

## browser: Debian's Chromium for the browser test (tests/ui), installed with apt-get when missing (root)
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "warning: no $(CHROMIUM) (apt-get install chromium): the browser test will fail"

## test: the whole suite against a PostgreSQL server the suite starts itself
test: $(DEPS) browser
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=40 -p no:cacheprovider

lint: $(DEPS)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

format: $(DEPS)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## lock: re-resolve the pinned sets after editing requirements*.in
lock: $(DEPS)
	$(BIN)/uv pip compile requirements.in --universal --python-version 3.11 -o requirements.txt
	$(BIN)/uv pip compile requirements-dev.in --universal --python-version 3.11 -o requirements-dev.txt

## bench-sync: the initial-sync benchmark (ours, plain COPY, dlt) at LEARNERS learners; dlt gets its own venv
LEARNERS ?= 100000
REPEATS  ?= 3
bench-sync: $(DEPS)
	test -x benchmarks/.venv-sync/bin/python || $(PYTHON) -m venv benchmarks/.venv-sync
	benchmarks/.venv-sync/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	benchmarks/.venv-sync/bin/uv pip install --quiet -p benchmarks/.venv-sync/bin/python -r benchmarks/sync/requirements-dlt.txt
	$(BIN)/python benchmarks/sync/bench_sync.py --learners $(LEARNERS) --repeats $(REPEATS)

## bench-celery: 2-hourly cdp_sync runs through the CeleryExecutor, one worker beside two, at CELERY_LEARNERS learners
CELERY_LEARNERS ?= 1000000
INTERVALS ?= 12
bench-celery: $(DEPS)
	$(BIN)/python benchmarks/celery/bench_celery.py --learners $(CELERY_LEARNERS) --intervals $(INTERVALS)

clean:
	-$(BIN)/cdp stop
	rm -rf $(VENV) .cdp
