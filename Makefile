# BRX Sync. `make run` starts everything on an embedded default; `make test` runs the suite
# against real PostgreSQL, MariaDB and Redis (started or installed where possible).
VENV ?= .venv
PY := $(VENV)/bin/python
# A new test database every run: a reused one keeps whatever an edited migration once applied
# (pyproject's --reuse-db skips re-creating it); any PYTEST_ARGS of your own reuse it.
PYTEST_ARGS ?= --create-db --durations=25

.PHONY: run test lint deps deps-dev services bench clean

deps:
	bash scripts/bootstrap.sh

deps-dev:
	bash scripts/bootstrap.sh dev

services:
	bash scripts/services.sh

run: deps
	$(PY) -m brxsync.localrun

test: deps-dev services
	$(PY) -m pytest $(PYTEST_ARGS)

lint: deps-dev
	$(VENV)/bin/ruff check .

clean:
	rm -rf var staticfiles
