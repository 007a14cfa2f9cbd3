# CVI Funding Finder — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export FLASK_APP := wsgi

.PHONY: install dev-install migrate seed reindex run serve test lint test-sqlite test-postgres browser bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

# Byte-compile the project once: where PYTHONDONTWRITEBYTECODE is set (containers, CI) every
# `flask` command would otherwise compile ~150 modules again at start-up (~0.35 s).
BYTECODE = $(BIN)/python -m compileall -q -j 0 app crawlers matching migrations wsgi.py >/dev/null

install: $(VENV)/.installed
	@$(BYTECODE)
dev-install: $(VENV)/.dev-installed
	@$(BYTECODE)

migrate: install
	$(BIN)/alembic upgrade head

seed: migrate
	$(BIN)/flask --app wsgi seed

reindex: seed
	$(BIN)/flask --app wsgi reindex

run: reindex
	$(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT)

# Production: gunicorn workers + the scheduler on PostgreSQL (DATABASE_URL; see the README).
serve: install
	$(BIN)/python scripts/serve.py

lint: dev-install
	$(BIN)/ruff check app crawlers matching tests bench migrations wsgi.py
	$(BIN)/mypy app crawlers matching

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test-sqlite: dev-install browser
	TEST_DATABASE_URL=sqlite $(BIN)/pytest -q -p no:cacheprovider

test-postgres: dev-install browser
	bash scripts/ensure-postgres.sh
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q -p no:cacheprovider

test: lint test-sqlite test-postgres

bench: dev-install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
