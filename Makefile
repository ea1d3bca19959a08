# The two commands: `make demo` and `make test`. Everything else is set up by them.
# `make chaos` is the reliability proof (docs/RELIABILITY.md); CI runs it small: make chaos ARGS="--webhooks 120".
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit bench chaos clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/erpsync demo $(ARGS)

test: $(STAMP)
	$(BIN)/pytest $(ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

chaos: $(STAMP)
	$(BIN)/python bench/chaos.py $(ARGS)

clean:
	rm -rf .erpsync $(VENV)
