# Two commands for a newcomer: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo build test test-fast lint format seeds clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/skewless demo

# Write, audit, then publish: dbt build with every test into data/.builds/<id>; only a green
# build replaces data/skewless.duckdb and data/features (docs/staging.md).
build: $(STAMP)
	$(BIN)/skewless build

# The complete suite (what CI runs): lint, then every test against real DuckDB, Feast,
# PostgreSQL and Redis.
# PYSPARK_PYTHON: Spark's Python workers run the venv's interpreter (docs/spark.md).
test: $(STAMP) system-deps lint
	PYSPARK_PYTHON=$(abspath $(BIN))/python $(BIN)/python -m pytest -q

# The tests that need no demo build, project copy or server (under two minutes).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not full"

lint: $(STAMP)
	$(BIN)/ruff check skewless tests bench feature_repo

format: $(STAMP)
	$(BIN)/ruff format skewless tests bench feature_repo
	$(BIN)/ruff check --fix skewless tests bench feature_repo

# The tests start their own PostgreSQL and Redis servers on 127.0.0.1, open the audit page in
# a headless chromium and run Spark in-process on a Java 17 runtime (Debian's packages; Java only
# when no `java` is on the PATH: docs/spark.md).
system-deps:
	@{ ls /usr/lib/postgresql/*/bin/pg_ctl && command -v redis-server && command -v chromium \
	   && command -v chromedriver && command -v java; } >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql \
	    redis-server chromium chromium-driver \
	    $$(command -v java >/dev/null 2>&1 || echo openjdk-17-jre-headless); }

# Regenerate the shipped seeds/*.csv (deterministic: the same bytes every time).
seeds: $(STAMP)
	$(BIN)/skewless generate --out seeds --format csv

clean:
	rm -rf target data/skewless.duckdb data/feast data/features/*.parquet data/models logs
