PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint fmt bench demo clean

$(STAMP): pyproject.toml sdk/pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e './sdk[openfeature]' -e '.[dev,embedded]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/sharpen serve --dev

test: $(STAMP)
	$(BIN)/pytest

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m loadtests

demo: $(STAMP)
	$(BIN)/sharpen demo

clean:
	rm -rf $(VENV) .sharpen .pytest_cache .mypy_cache .ruff_cache
