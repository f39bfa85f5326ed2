# Conversa: `make run` serves the demo, `make test` runs every test. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
WEB_WORKERS ?= 2
# Task worker processes of run-prod: never more than the machine's cores (each is CPU-bound while
# a webhook backlog lasts). With two or more, one serves only outbound sends.
TASK_WORKERS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: run run-prod worker test lint typecheck bench ci browser-deps messages clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py compilemessages --ignore=.venv -v0 || true
	$(PY) manage.py load_demo
	$(VENV)/bin/uvicorn conversa.asgi:application --app-dir src --host $(HOST) --port $(PORT) --loop uvloop --http httptools

# Production shape on one machine: several ASGI workers + TASK_WORKERS task workers (one serving
# only outbound sends, so replies never wait behind webhooks; the others every queue, outbound first).
# Needs DATABASE_URL (PostgreSQL) and REDIS_URL; see docs/operations.md.
# Each task worker runs under a tiny supervisor loop that restarts it when it dies (kill -9, OOM);
# the loops are stopped with the web server: a background job of a non-interactive shell ignores
# Ctrl-C, so without the trap they would outlive `make`.
run-prod: $(STAMP)
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" -a -n "$$SECRET_KEY" || \
	  (echo "set DATABASE_URL, REDIS_URL and SECRET_KEY (docs/operations.md)" && exit 1)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	export CONVERSA_EMBEDDED_WORKER=0; \
	supervise() { trap 'kill $$child 2>/dev/null; wait $$child; exit 0' TERM INT; \
	  while :; do $(PY) manage.py conversa_worker "$$@" & child=$$!; wait $$child; \
	    echo "conversa_worker $$* exited ($$?); restarting in 2 s" >&2; sleep 2; done; }; \
	n=$(TASK_WORKERS); pids=; if [ $$n -ge 2 ]; then supervise --queues outbound & pids=$$!; n=$$((n - 1)); fi; \
	for i in $$(seq $$n); do supervise & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null; wait $$pids' EXIT INT TERM; \
	$(VENV)/bin/uvicorn conversa.asgi:application --app-dir src --host $(HOST) \
	  --port $(PORT) --workers $(WEB_WORKERS) --loop uvloop --http httptools --no-access-log --timeout-graceful-shutdown 20 \
	  --ws websockets-sansio --ws-per-message-deflate false

worker: $(STAMP)
	$(PY) manage.py conversa_worker

# What the tests need from Debian: Chromium for the browser tests, gettext for the translations,
# npm for axe-core (package.json: the accessibility checks injected by tests/web/test_accessibility.py).
browser-deps:
	@if ! test -x /usr/bin/chromium || ! command -v msgfmt >/dev/null || ! command -v npm >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium gettext npm >/dev/null; fi
	@test -f node_modules/axe-core/axe.min.js || npm ci --no-audit --no-fund --silent

test: $(STAMP) browser-deps
	env -u DATABASE_URL -u REDIS_URL $(PY) manage.py compilemessages --ignore=.venv -v0 || true
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# ruff, mypy, and the layout checks (layering via import-linter, module size, moved names):
# tests/test_architecture.py, allowlists in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest tests/test_architecture.py -p no:cacheprovider -q

bench: $(STAMP)
	@for b in bench/*.py; do $(PY) $$b; done

messages: $(STAMP)
	cd src/conversa && ../../$(PY) ../../manage.py makemessages -l es --ignore=.venv

clean:
	rm -rf $(VENV) var
