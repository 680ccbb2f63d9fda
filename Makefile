# The two commands: `make run` and `make test`. Each sets up its own virtualenv.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
# npm `hibp` for tests/test_third_party_hibp_clients.py, installed when npm is there.
JS_STAMP := tests/js/node_modules/.installed-stamp
JS_DEPS  := $(if $(shell command -v npm 2>/dev/null),$(JS_STAMP))
HOST    ?= 127.0.0.1
PORT    ?= 5000

.PHONY: run test lint bench-help clean translations

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

## Serve on http://$(HOST):$(PORT) with the embedded defaults (SQLite in instance/, demo data).
run: $(STAMP)
	$(BIN)/breachguard init
	$(BIN)/breachguard demo
	$(BIN)/breachguard serve --host $(HOST) --port $(PORT)

## Lint, type-check, then the suite on SQLite; when TEST_DATABASE_URL (and
## TEST_REDIS_URL) are set, as .ci/run does, the suite on PostgreSQL + Redis at the same
## time (both mostly wait on servers), but for the Chromium journeys (marker `browser`),
## which run once. The PostgreSQL pass's output follows the SQLite pass's.
test: $(STAMP) $(JS_DEPS) lint
	@pg_log=$$(mktemp); \
	if [ -n "$$TEST_DATABASE_URL" ]; then \
	  $(BIN)/python -m pytest -q -p no:cacheprovider -m "not browser" > $$pg_log 2>&1 & \
	fi; \
	TEST_DATABASE_URL= TEST_REDIS_URL= $(BIN)/python -m pytest -q -p no:cacheprovider; sqlite=$$?; \
	pg=0; \
	if [ -n "$$TEST_DATABASE_URL" ]; then \
	  wait $$! || pg=$$?; \
	  echo "--- on PostgreSQL ($${TEST_DATABASE_URL##*@}) and Redis ($${TEST_REDIS_URL:-none})"; \
	  cat $$pg_log; \
	fi; \
	rm -f $$pg_log; \
	[ $$sqlite -eq 0 ] && [ $$pg -eq 0 ]

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache tests/js/node_modules

## Languages (README: Languages): gather the strings marked in auth/ and merge them into
## the catalogs; then translate what is new or fuzzy in auth/translations/fr/.../messages.po.
translations: $(STAMP)
	mkdir -p build
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output -o build/messages.pot .
	$(BIN)/pybabel update -i build/messages.pot -d auth/translations --ignore-obsolete
