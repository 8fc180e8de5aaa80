# The README's two commands: `make run` and `make test`. Both create .venv and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test check lint format typecheck dockerlint bench clean lock deploy-tools deploy-check browser

# The runtime dependencies come from the hash-checked lock (as in the image), so the suite tests
# exactly what the image ships; the tooling comes from the exact pins of the dev extra.
$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet -e '.[dev,speed]'
	touch $(INSTALLED)

PIP_TOOLS := pip-tools==7.7.0
# The lock holds the `speed` extra too (uvloop), so the image serves on the loop the bench measures.
lock: $(INSTALLED)  ## re-resolve requirements.lock (versions and hashes) from pyproject.toml's ranges
	$(BIN)/python -m pip install --quiet '$(PIP_TOOLS)'
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --extra speed --no-emit-index-url \
		--no-emit-find-links --output-file requirements.lock pyproject.toml

# The real tools tests/deploy drives (they skip without them, and fail under CI=true): Helm's library
# and Kubernetes' schemas from PyPI (the `deploy` extra), the prometheus-operator schemas from npm,
# promtool from Debian's prometheus package. Installed once; pip, npm and apt keep their caches.
DEPLOY_TOOLS := $(VENV)/.deploy-tools
NODE_TOOLS := tests/deploy/node
$(DEPLOY_TOOLS): $(INSTALLED) $(NODE_TOOLS)/package.json
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy]'
	cd $(NODE_TOOLS) && npm install --no-audit --no-fund --no-package-lock --silent
	command -v promtool >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	touch $(DEPLOY_TOOLS)

deploy-tools: $(DEPLOY_TOOLS)  ## install helm-python-sdk, kubernetes-validate, the operator schemas, promtool

deploy-check: $(DEPLOY_TOOLS)  ## chart, schemas, alert rules and the wheel in a clean venv, as CI runs them
	CI=true $(BIN)/pytest tests/deploy

run: $(INSTALLED)  ## start the proxy with in-process fakes of Maskinporten and Altinn 3
	$(BIN)/altinn-proxy sandbox

test: check  ## lint, type checks and the whole test suite
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: test-under-load
test-under-load:  ## `make test` three times in a fresh clone with two CPU-burning processes alongside
	.ci/test-under-load

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

browser:  ## Debian's chromium for the migration board's browser test (skipped without it, required under CI=true)
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
