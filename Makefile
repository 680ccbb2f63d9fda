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

## Lint, type-check, then the suite on SQLite; again on PostgreSQL + Redis when
## TEST_DATABASE_URL (and TEST_REDIS_URL) are set, as .ci/run does, but for the
## Chromium journeys (marker `browser`), which run once.
test: $(STAMP) $(JS_DEPS) lint
	TEST_DATABASE_URL= TEST_REDIS_URL= $(BIN)/python -m pytest -q -p no:cacheprovider
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
	  echo "--- again on PostgreSQL ($${TEST_DATABASE_URL##*@}) and Redis ($${TEST_REDIS_URL:-none})"; \
	  $(BIN)/python -m pytest -q -p no:cacheprovider -m "not browser"; \
	fi

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
