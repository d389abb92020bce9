PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every third-party package of the dev environment, pinned: `make venv` installs within it,
# `make lock` re-resolves it after a dependency range in a pyproject.toml changes.
LOCK := requirements-dev.lock
PROJECTS := -e './sdk[openfeature]' -e '.[dev,embedded]'

.PHONY: venv lock run test check lint fmt bench demo clean

$(STAMP): pyproject.toml sdk/pyproject.toml $(LOCK)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(LOCK) $(PROJECTS)
	touch $(STAMP)

venv: $(STAMP)

lock:
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/pip install -q uv
	printf -- '-e ./sdk[openfeature]\n-e .[dev,embedded]\n' | $(BIN)/uv pip compile - --universal --python-version 3.11 \
		--no-emit-package sharpen --no-emit-package sharpen-service --no-header -q -o $(LOCK).tmp
	{ echo "# Pinned dev environment; regenerate with 'make lock' (uv pip compile)."; \
	  cat $(LOCK).tmp; } > $(LOCK) && rm $(LOCK).tmp

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
