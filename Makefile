# make run: set up everything on a fresh machine and start web, worker, reminders and cron.
# make test: set up the same way and run the whole suite against real Redis and databases.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install secrets chromium run test faults bench clean

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "cannot create a virtualenv: install Python 3.11+ with venv (apt-get install python3-venv)"; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	@touch $(INSTALLED)

install: $(INSTALLED)

.env:
	@$(BIN)/python -c "import secrets; print('WHATSAPP_APP_SECRET=' + secrets.token_hex(16)); print('WHATSAPP_VERIFY_TOKEN=' + secrets.token_hex(8))" > .env
	@echo "wrote .env with a generated app secret and verify token (put Meta's in it for production)"

secrets: .env  # a .env from before the desk gains the keys it lacks
	@grep -q '^WAPULSE_SECRET_KEY=' .env || { $(BIN)/python -c "import secrets; print('WAPULSE_SECRET_KEY=' + secrets.token_hex(32))" >> .env && echo "added WAPULSE_SECRET_KEY to .env (signs the desk's sessions)"; }
	@grep -q '^WAPULSE_API_TOKEN=' .env || { $(BIN)/python -c "import secrets; print('WAPULSE_API_TOKEN=' + secrets.token_urlsafe(24))" >> .env && echo "added WAPULSE_API_TOKEN to .env (the API's bearer token)"; }

run: install secrets
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/wapulse up

chromium:  # the browser the desk's tests drive (Playwright cannot download its own here), with fonts for every script
	@{ command -v chromium >/dev/null && fc-list 2>/dev/null | grep -q "Noto Sans CJK"; } || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    { apt-get update -qq && apt-get install -y -qq chromium fonts-noto-core fonts-noto-cjk; }; } || \
	  echo "chromium (or fonts for every script) cannot be installed here: the desk's browser tests may be skipped"

test: install chromium
	$(BIN)/python -m pytest -q

faults: install  # the fault suite alone, with a table of what was tried and survived (make test runs it too)
	$(BIN)/python -m pytest -q -m fault

bench: install
	@command -v wrk >/dev/null && command -v nginx >/dev/null && test -f /usr/include/ev.h || \
	  { apt-get update -qq && apt-get install -y -qq wrk nginx-light libev-dev; } || { \
	  echo "bench/webhook.py needs wrk, nginx and libev-dev (to build bjoern): apt-get install wrk nginx-light libev-dev"; exit 1; }
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python -m bench.workers
	$(BIN)/python -m bench.sweep
	$(BIN)/python -m bench.webhook
	$(BIN)/python -m bench.slow_clients
	$(BIN)/python -m bench.slow_reminders
	$(BIN)/python -m bench.durability
	$(BIN)/python -m bench.end_to_end
	$(BIN)/python -m bench.report
	$(BIN)/python -m bench.retention
	$(BIN)/python -m bench.desk

clean:
	rm -rf $(VENV) var .pytest_cache
