# Quality Revitalization Platform: `make run` starts the suite, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
SERVICES := services/brand_registry services/certification services/inspection services/assessment gateway

export QRP_HOST ?= 127.0.0.1
export GATEWAY_PORT ?= 8000
export BRAND_REGISTRY_PORT ?= 8001
export CERTIFICATION_PORT ?= 8002
export INSPECTION_PORT ?= 8003
export ASSESSMENT_PORT ?= 8004
export GATEWAY_BRAND_REGISTRY_URL ?= http://$(QRP_HOST):$(BRAND_REGISTRY_PORT)
export GATEWAY_CERTIFICATION_URL ?= http://$(QRP_HOST):$(CERTIFICATION_PORT)
export GATEWAY_INSPECTION_URL ?= http://$(QRP_HOST):$(INSPECTION_PORT)
export GATEWAY_ASSESSMENT_URL ?= http://$(QRP_HOST):$(ASSESSMENT_PORT)
export ASSESSMENT_BRAND_REGISTRY_URL ?= $(GATEWAY_BRAND_REGISTRY_URL)
export ASSESSMENT_CERTIFICATION_URL ?= $(GATEWAY_CERTIFICATION_URL)
export ASSESSMENT_INSPECTION_URL ?= $(GATEWAY_INSPECTION_URL)
export INSPECTION_BRAND_REGISTRY_URL ?= $(GATEWAY_BRAND_REGISTRY_URL)
DEMO ?= 1

.PHONY: help install run migrate keys test lint format clean integration browser

help:
	@echo "make run     install, migrate, load the demo data (DEMO=0 skips it) and start the suite"
	@echo "make test    install and run every test (TEST_DATABASE_URL=postgresql+asyncpg://… for PostgreSQL)"
	@echo "make lint    ruff check, ruff format --check, mypy strict on the kit and every deployable"
	@echo "make integration  the black-box suite and schemathesis (GATEWAY_URL=… for a deployment)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --quiet
	@touch $@

install: $(VENV)/.synced

keys: install
	@$(BIN)/python -m kit.keys var/keys gateway gateway-oauth assessment inspection >/dev/null
	@test -s var/keys/admin.key || $(BIN)/python -c "import secrets; print('qrp_admin_' + secrets.token_urlsafe(32))" > var/keys/admin.key
	@chmod 600 var/keys/admin.key

migrate: install
	@for service in $(SERVICES); do \
		$(BIN)/alembic -c $$service/alembic.ini upgrade head || exit 1; \
	done

run: keys migrate
	@export GATEWAY_BOOTSTRAP_ADMIN_KEY="$${GATEWAY_BOOTSTRAP_ADMIN_KEY:-$$(cat var/keys/admin.key)}"; \
	export QRP_DEMO=$(DEMO); \
	exec $(BIN)/honcho start -f Procfile

test: install
	$(BIN)/pytest

integration: install
	$(BIN)/python scripts/integration.py

browser: install
	$(BIN)/pytest tests/browser

# The suite on a PostgreSQL and a Redis of its own, stopped, frozen and killed (scripts/faults.py).
.PHONY: faults
faults: install
	$(BIN)/python scripts/faults.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p kit -p brand_registry -p certification -p inspection -p assessment -p gateway

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(TOOLS) var

.PHONY: compose-test
compose-test: install
	$(BIN)/python scripts/compose_test.py
