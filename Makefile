# segflow: the two commands of the quick start are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench airflow install system-deps clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Chromium renders the report in the browser test; PostgreSQL serves the server-warehouse tests.
system-deps:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
		|| echo "could not install chromium: the browser test will be skipped"; \
		else echo "chromium missing and not root: the browser test will be skipped"; fi; }
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
		|| echo "could not install postgresql: the PostgreSQL tests will be skipped"; fi; }

demo: $(STAMP)
	$(BIN)/segflow demo

lint: $(STAMP)
	$(BIN)/ruff check transforms dags plugins tests bench
	$(BIN)/ruff format --check transforms dags plugins tests bench
	$(BIN)/sqlfluff lint sql --disable-progress-bar --nocolor

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest -q

# Benchmarks, not tests: N orders raw -> features and the pandas reference side by side.
ORDERS ?= 1000000
bench: $(STAMP)
	$(BIN)/python bench/bench.py --orders $(ORDERS)

# Airflow UI on loopback with the project's DAGs (admin password printed by standalone).
airflow: $(STAMP)
	$(BIN)/segflow airflow

clean:
	rm -rf warehouse data airflow_home exports reports
