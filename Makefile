# notifier: `make run` starts the whole stack, `make test` runs the test suite.
# Both set up everything they need first: virtualenv, pinned requirements,
# PostgreSQL/RabbitMQ/Redis on their default local ports, database, migrations.

SHELL := /bin/bash
# The first interpreter that actually runs and is 3.11+ (pyenv shims may exist for missing versions).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do $$p -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests use their own database (notifier_$(TEST_NS)), RabbitMQ vhost and Redis db.
TEST_NS ?= test
TEST_REDIS_DB ?= 15
export NOTIFIER_TEST_NAMESPACE := $(TEST_NS)
export NOTIFIER_TEST_REDIS_DB := $(TEST_REDIS_DB)

.PHONY: run test setup services db venv bench cluster-test clean check-python

# Every process of `make run` writes its Prometheus counters here; /metrics adds them up.
PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/var/prometheus
# The dotenv file every process reads under its environment (notifier/env.py): NOTIFIER_DOTENV, else .env.
DOTENV := $(or $(NOTIFIER_DOTENV),.env)
# Runs a command with that file loaded under the environment (the real environment wins).
WITH_DOTENV := $(BIN)/python -m notifier.devtools.with_dotenv

run: setup
	@mkdir -p "$(PROMETHEUS_MULTIPROC_DIR)"
	@find "$(PROMETHEUS_MULTIPROC_DIR)" -maxdepth 1 -name '*.db' -delete
	@grep -q '^FLOWER_BASIC_AUTH=' "$(DOTENV)" || { echo "FLOWER_BASIC_AUTH=admin:$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(12))')" >> "$(DOTENV)"; echo "added Flower credentials to $(DOTENV)"; }
	@$(WITH_DOTENV) bash -c 'mkdir -p "$${SMTP_SINK_DIR:-var/mail}"; \
	  echo "notifier: API http://127.0.0.1:$${WEB_PORT:-8000}/api/v1/  admin /admin/  mail in $${SMTP_SINK_DIR:-var/mail}/"; \
	  echo "          Flower http://127.0.0.1:$${FLOWER_PORT:-5555} (login $${FLOWER_BASIC_AUTH:-none: set FLOWER_BASIC_AUTH})"; \
	  echo "          metrics http://127.0.0.1:$${WEB_PORT:-8000}/metrics  health /healthz  readiness /readyz"'
	@# --env /dev/null: honcho would otherwise load .env OVER the environment (DEBUG=0 make run would run
	@# with DEBUG=1). with_dotenv loads it UNDER the environment instead, so the Procfile's $${VARIABLES}
	@# see it too; the processes also read it themselves (config/settings/), never overriding.
	@# Flower and the SMTP sink run under notifier/devtools/optional.py: if one of them cannot start it is
	@# reported and retried, and the others keep running; if the API, a worker or beat exits, honcho stops all.
	PROMETHEUS_MULTIPROC_DIR="$(PROMETHEUS_MULTIPROC_DIR)" $(WITH_DOTENV) $(BIN)/honcho start -f Procfile --env /dev/null

test: venv $(DOTENV) services
	@bash notifier/devtools/ensure_test_tools.sh
	$(BIN)/python notifier/devtools/ensure_db.py
	@# The whole suite: integration tests and unit/app tests side by side, each in its own namespace
	@# (notifier/devtools/run_tests.py). With PYTEST_ARGS: one pytest with those arguments.
	$(if $(strip $(PYTEST_ARGS)),$(BIN)/python -m pytest $(PYTEST_ARGS),$(BIN)/python notifier/devtools/run_tests.py)

setup: venv $(DOTENV) services db

check-python:
	@test -n "$(PYTHON)" || { echo "notifier needs Python 3.11 or newer with venv (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }

venv: check-python $(STAMP)

$(STAMP): requirements/base.txt requirements/test.txt requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/test.txt
	@touch $(STAMP)

# Local settings for `make run` and manage.py: DEBUG on and a random secret key.
# Never committed; production sets its environment instead.
$(DOTENV):
	@echo "DEBUG=1" > "$@"
	@echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" >> "$@"
	@echo "FLOWER_BASIC_AUTH=admin:$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(12))')" >> "$@"
	@echo "created $@ (DEBUG=1, a random SECRET_KEY, Flower credentials) for local use"

services:
	@bash notifier/devtools/ensure_services.sh notifier_$(TEST_NS) notifier_$(TEST_NS)_app

db: venv
	$(BIN)/python notifier/devtools/ensure_db.py
	$(BIN)/python manage.py migrate --noinput -v 0

bench: setup
	$(BIN)/python manage.py bench $(BENCH_ARGS)

# Scale-out (docs/scaling.md): a 3-node RabbitMQ cluster (own nodes and ports; the machine's RabbitMQ is not
# touched), the stack on it with quorum queues, CLUSTER_NOTIFICATIONS posted, a broker node and then a worker
# host SIGKILLed mid-load; prints sent, duplicates, time and throughput. Uses database notifier_$(TEST_NS)_cluster
# (created and dropped) and Redis db $(TEST_REDIS_DB).
CLUSTER_NOTIFICATIONS ?= 100000
cluster-test: venv .env services
	$(BIN)/python -m notifier.devtools.cluster_scenario --notifications $(CLUSTER_NOTIFICATIONS) $(CLUSTER_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
