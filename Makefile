# The README's two commands: `make run` and `make test`. Both create .venv and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test check lint format typecheck dockerlint bench clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)  ## start the proxy with in-process fakes of Maskinporten and Altinn 3
	$(BIN)/altinn-proxy sandbox

test: check  ## lint, type checks and the whole test suite
	$(BIN)/pytest $(PYTEST_ARGS)

check: lint typecheck dockerlint  ## the quality gates

lint: $(INSTALLED)
	$(BIN)/ruff check proxy tests bench
	$(BIN)/ruff format --check proxy tests bench

typecheck: $(INSTALLED)
	$(BIN)/mypy

dockerlint: $(INSTALLED)
	$(BIN)/hadolint Dockerfile

format: $(INSTALLED)
	$(BIN)/ruff check --fix proxy tests bench
	$(BIN)/ruff format proxy tests bench

bench: $(INSTALLED)  ## loopback benchmarks (see bench/README.md)
	$(BIN)/python -m bench.translate
	$(BIN)/python -m bench.streaming

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
