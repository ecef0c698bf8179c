# BRX Sync. `make run` starts everything on an embedded default; `make test` runs the suite
# against real PostgreSQL, MariaDB and Redis (started or installed where possible).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

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
