# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_DIR := tests/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
MO := translations/en/LC_MESSAGES/messages.mo translations/fr/LC_MESSAGES/messages.mo

.PHONY: run test install translations i18n-update i18n-check lint chromium node bench bench-node wrk clean test-fast

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The standard compile: a catalog marked fuzzy would be skipped (make i18n-check refuses one).
$(MO) &: translations/en/LC_MESSAGES/messages.po translations/fr/LC_MESSAGES/messages.po $(STAMP)
	$(VENV)/bin/pybabel compile -d translations

translations: $(MO)

i18n-update: $(STAMP)
	$(PY) translations/catalogs.py update

i18n-check: $(STAMP)
	$(PY) translations/catalogs.py check

lint: $(STAMP)
	$(VENV)/bin/ruff check idp demo tests bench translations wsgi.py setup.py

# Debian's Chromium for the browser tests; installed only when missing.
chromium:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }

# Node packages for the interop client (openid-client) and the accessibility scan (axe-core).
$(NODE_STAMP): $(NODE_DIR)/package.json
	cd $(NODE_DIR) && npm install --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

node: $(NODE_STAMP)

# The IdP on :5000 and the demo portal (demo/) on :8080; the portal stops with the IdP.
run: install translations
	$(VENV)/bin/idp init --demo
	$(PY) -m demo & portal=$$!; trap 'kill $$portal' EXIT; $(VENV)/bin/idp serve

test: install translations chromium node wrk bench-node i18n-check lint
	$(PY) -m pytest

test-fast: install translations
	$(PY) -m pytest -m "not browser and not interop"

# The peer of `make bench`: node oidc-provider (bench/node/), and wrk (Debian), when missing.
BENCH_NODE_STAMP := bench/node/node_modules/.installed
$(BENCH_NODE_STAMP): bench/node/package.json
	cd bench/node && npm install --no-audit --no-fund --loglevel=error
	touch $(BENCH_NODE_STAMP)

bench-node: $(BENCH_NODE_STAMP)

wrk:
	@command -v wrk >/dev/null || apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }

# SQLite, then PostgreSQL when it answers on 127.0.0.1:5432 (database idp_bench, wiped;
# IDP_BENCH_DATABASE_URL overrides).
bench: install translations wrk bench-node
	@if [ -z "$$IDP_BENCH_DATABASE_URL" ] && pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then \
	  createdb -h 127.0.0.1 -U postgres idp_bench 2>/dev/null || true; \
	  export IDP_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/idp_bench; \
	fi; $(PY) bench/run.py

clean:
	rm -rf $(VENV) instance $(NODE_DIR)/node_modules bench/node/node_modules
