# segflow: the two commands of the quick start are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-postgres demo-spark postgres-up postgres-down spark-connect-up spark-connect-down test lint bench airflow install system-deps browser-deps postgres-deps clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Chromium renders the report in the browser test; PostgreSQL serves the server-warehouse tests.
system-deps: browser-deps postgres-deps

# The CJK fonts are checked on their own: a machine with chromium but without them renders the
# report's Chinese as empty boxes.
browser-deps:
	@{ command -v chromium >/dev/null && fc-list :lang=zh 2>/dev/null | grep -q .; } || { if [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fontconfig >/dev/null) \
		|| echo "could not install chromium and the CJK fonts: the browser test will be skipped"; \
		else echo "chromium or the CJK fonts missing and not root: the browser test will be skipped"; fi; }

postgres-deps:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
		|| echo "could not install postgresql"; fi; }

DEMO_ORDERS ?= 20000
DEMO_DIR ?= .
demo: $(STAMP)
	$(BIN)/segflow demo --orders $(DEMO_ORDERS) --dir $(DEMO_DIR)

# The demo on a throwaway PostgreSQL in $(PG_DIR) (loopback only), stopped when it ends.
# `make postgres-up` starts it again to look around; `make postgres-down` stops it.
PG_DIR ?= warehouse/postgres
PG := $(BIN)/python -m transforms.engines.local_postgres
demo-postgres: $(STAMP) postgres-deps
	@url=$$($(PG) start $(PG_DIR)) || exit 1; echo "PostgreSQL: $$url"; \
	SEGFLOW_WAREHOUSE=$$url $(BIN)/segflow demo --orders $(DEMO_ORDERS) --dir $(DEMO_DIR); status=$$?; \
	$(PG) stop $(PG_DIR); echo "stopped; \`make postgres-up\` starts it again"; exit $$status

postgres-up: $(STAMP) postgres-deps
	@url=$$($(PG) start $(PG_DIR)) && echo "SEGFLOW_WAREHOUSE=$$url"

postgres-down: $(STAMP)
	@$(PG) stop $(PG_DIR)

# The demo on a local Spark session (pyspark from requirements.txt; Java 17 on the machine), its
# tables and catalog under $(SPARK_DIR).
SPARK_DIR ?= warehouse/spark
demo-spark: $(STAMP)
	@command -v java >/dev/null || { echo "make demo-spark needs Java 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"; exit 1; }
	SEGFLOW_WAREHOUSE=spark://$(abspath $(SPARK_DIR)) $(BIN)/segflow demo --orders $(DEMO_ORDERS) --dir $(DEMO_DIR)

# A Spark Connect server on this machine (the pinned pyspark's, local[2], 127.0.0.1 only) to try
# `sc://` without a cluster; its pid, port and log in $(SPARK_CONNECT_DIR).
SPARK_CONNECT_DIR ?= warehouse/spark-connect
SPARK_CONNECT := $(BIN)/python -m transforms.engines.local_spark_connect
spark-connect-up: $(STAMP)
	@command -v java >/dev/null || { echo "a Spark Connect server needs Java 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"; exit 1; }
	@url=$$($(SPARK_CONNECT) start $(SPARK_CONNECT_DIR)) && echo "SEGFLOW_WAREHOUSE=$$url"

spark-connect-down: $(STAMP)
	@$(SPARK_CONNECT) stop $(SPARK_CONNECT_DIR)

lint: $(STAMP)
	$(BIN)/ruff check transforms dags plugins tests bench
	$(BIN)/ruff format --check transforms dags plugins tests bench
	$(BIN)/sqlfluff lint sql --disable-progress-bar --nocolor

# Test files in TEST_WORKERS processes (pytest-xdist): most of the suite's time is spent waiting on
# servers, Airflow and Spark, not on the two cores.
TEST_WORKERS ?= 3
test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

# Benchmarks, not tests: N orders raw -> features and the pandas reference side by side.
# ENGINE=postgres or ENGINE=spark: the same data on DuckDB and a local PostgreSQL or Spark session
# side by side; LANDING=DIR reuses a Parquet landing generated before.
ORDERS ?= 1000000
ENGINE ?= duckdb
bench: $(STAMP) $(if $(filter postgres,$(ENGINE)),postgres-deps)
	$(BIN)/python bench/bench.py --orders $(ORDERS) --engine $(ENGINE) $(if $(LANDING),--landing $(LANDING))

# Airflow UI on 127.0.0.1 with the project's DAGs; Ctrl-C stops every component.
AIRFLOW_PORT ?= 8080
airflow: $(STAMP)
	$(BIN)/segflow airflow --port $(AIRFLOW_PORT) $(if $(AIRFLOW_HOME_DIR),--home $(AIRFLOW_HOME_DIR))

clean: postgres-down spark-connect-down
	rm -rf warehouse data airflow_home exports reports
