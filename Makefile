# Two commands for a newcomer: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test seeds clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/skewless demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Regenerate the shipped seeds/*.csv (deterministic: the same bytes every time).
seeds: $(STAMP)
	$(BIN)/skewless generate --out seeds --format csv

clean:
	rm -rf target data/skewless.duckdb data/feast data/features/*.parquet logs
