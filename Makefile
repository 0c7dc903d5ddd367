# `make test` on a fresh Debian machine: system packages, virtualenv, then every test
# (unit tests, then the lab tests when run as root). `.ci/run` calls exactly `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test unit lab lab-down check lint bench deps
deps: $(STAMP)

$(STAMP): pyproject.toml
	./scripts/install-system-deps
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m model check Pulumi.prod.yaml
	$(BIN)/python -m model check Pulumi.preprod.yaml
	$(BIN)/pytest -q tests/unit
	@if [ "$$(id -u)" = 0 ]; then $(BIN)/pytest -q -m lab tests/lab; \
	else echo "not root: lab tests skipped (CI runs them as root)"; fi

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .

lab: $(STAMP)
	./scripts/lab-full

lab-down: $(STAMP)
	$(BIN)/python -m lab down

check: $(STAMP)
	$(BIN)/python -m model check Pulumi.prod.yaml
	$(BIN)/python -m model check Pulumi.preprod.yaml
