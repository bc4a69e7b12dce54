# feedsvc: `make run` serves the sample articles; `make test` runs lint, types and the whole suite;
# `make test-fast` the same without the tests marked slow or browser (the 24 fast-lane tests that drive
# Chromium cost 16 s of its 62: their pages are still rendered and parsed by the other tests; `make test`, CI
# and `pytest -m browser` run them). Measured on this 2-core machine, 2026-12-08 01:08, quiet (load under 1),
# PostgreSQL and Redis not configured: 2,426 tests, pytest 43.4 s, 55.3 s wall with ruff and mypy beside it.
# With FEEDSVC_TEST_POSTGRESQL_URL/REDIS_URL set the lane also runs the store's PostgreSQL variants (3,061 tests,
# 202 s at load 4-5). `make test` in CI (clean clone, .ci/run, quiet) 3,778 tests in 6 min 52 s in parallel, then
# the load test in 2 min 26 s.
# Markers that decide which lane runs what: pyproject.toml.
# Both set up everything they need on a fresh machine (venv, Python packages, Debian packages).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Exported: the default site URL (FEEDSVC_SITE_URL unset) is http://localhost:$PORT, so links and ports agree.
export PORT
# Debian packages the tests need: a browser and Devanagari fonts for page tests, nginx for the mirror,
# PgBouncer for the several-machines test (tests/test_multi_node.py).
TEST_DEBS := chromium fonts-noto-core nginx libnginx-mod-http-brotli-static pgbouncer
BENCH_DEBS := nginx libnginx-mod-http-brotli-static wrk
# What pip needs to build PyICU (requirements.txt; no wheels on PyPI): ICU's headers, pkg-config, a C++ compiler.
BUILD_DEBS := libicu-dev pkg-config g++
PYTEST_ARGS ?=

.PHONY: run test test-fast lint bench screenshots venv dev-venv system-deps bench-deps build-deps node_modules clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(BIN)/activate build-deps
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/activate build-deps
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

venv: $(VENV)/.run-installed
dev-venv: $(VENV)/.dev-installed

# Installs only what is missing; needs root (apt-get), as on the project's machines and CI.
define install-debs
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
endef

system-deps:
	$(call install-debs,$(TEST_DEBS))

bench-deps:
	$(call install-debs,$(BENCH_DEBS))

build-deps:
	$(call install-debs,$(BUILD_DEBS))

node_modules: package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch node_modules

# Loopback only unless asked: `make run HOST=0.0.0.0` serves other machines too.
HOST ?= 127.0.0.1
run: venv
	$(BIN)/flask --app wsgi init-db
	$(BIN)/flask --app wsgi import-articles articles/
	$(BIN)/gunicorn --config deploy/gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# Compiled modules (and pytest's rewritten test modules) kept between runs and processes, in .pytest_cache/
# rather than beside the sources, even where the shell sets PYTHONDONTWRITEBYTECODE: without them each
# pytest process (the controller and both workers) spends 6.9 s CPU instead of 3.1 s collecting (measured).
PYTEST := PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/.pytest_cache/pycache $(BIN)/pytest

# The lanes run mypy beside the parallel tests rather than before them: in a clean clone (CI) its first run
# takes about 14 s CPU that the tests would otherwise wait for. Its report is shown after the tests', and
# either failing fails the lane (before the serial tests start).
define beside-types
	@types=$$(mktemp); $(BIN)/mypy >$$types 2>&1 & checker=$$!; \
	echo '$(1)'; $(1); tests=$$?; wait $$checker; checked=$$?; echo "mypy:"; cat $$types; rm -f $$types; \
	[ $$tests -eq 0 ] && [ $$checked -eq 0 ]
endef

test: dev-venv system-deps node_modules
	$(BIN)/ruff check .
	$(call beside-types,$(PYTEST) -n 2 --dist loadgroup -m "not serial" $(PYTEST_ARGS))
	$(PYTEST) -m serial $(PYTEST_ARGS)

test-fast: dev-venv system-deps node_modules
	$(BIN)/ruff check .
	$(call beside-types,$(PYTEST) -n 2 --dist loadgroup -m "not slow and not browser" --hypothesis-profile=fast $(PYTEST_ARGS))

# The README's and docs' screenshots (docs/screenshots/*.png), taken by the browser tests in real Chromium.
screenshots: dev-venv system-deps
	FEEDSVC_UPDATE_SCREENSHOTS=1 $(PYTEST) -q -p no:randomly tests/test_pages_browser.py tests/test_desk_browser.py

# Every row; the run's JSON is committed, and the README's performance block is made from it.
bench: dev-venv bench-deps
	$(BIN)/python -m bench --json bench/results/last-run.json
	$(BIN)/python -m bench.readme

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache
