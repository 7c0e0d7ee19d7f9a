# Lightbox: `make demo` and `make test` work on a fresh machine with Python 3.12 (the
# Lambda runtime's version; pyenv's is found too). Everything else: `make help`.

PYTHON ?= $(shell scripts/find-python.sh)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The AWS SAM CLI pins boto3 and click at versions of its own: it lives apart.
SAM_VENV  := $(VENV)/sam
SAM_STAMP := $(SAM_VENV)/.installed
OUT    ?= out/demo

.DEFAULT_GOAL := help
.PHONY: help install system-deps build demo test test-fast lint validate bench screenshot dev deploy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## make the virtualenv (.venv) with the pinned packages

$(SAM_STAMP): requirements-sam.lock
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.lock
	touch $(SAM_STAMP)

# sam build finds the runtime's python3.12 (with pip, for the layers' Makefiles) on PATH.
build: install $(SAM_STAMP) ## sam build for AWS (arm64), then each function's size with its layers
	PATH="$(abspath $(BIN)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build
	$(BIN)/python -m lightbox_local.packaging sizes .aws-sam/build

system-deps: ## install Debian's Chromium for the browser tests (apt-get, as root or with sudo)
	@scripts/install-system-deps.sh

demo: install ## shoot the embedded photo into studio shots through the local event flow
	$(BIN)/lightbox shoot infra/lightbox_local/samples/skimage-coffee.png \
		--scenes all --presets original,amazon-main --buy starter --out $(OUT)

test: install system-deps build ## run the whole test suite (unit, packaging, flow, browser)
	$(BIN)/pytest

test-fast: install ## the tests that need neither the local stack nor a browser
	$(BIN)/pytest -m "not flow and not browser and not slow"

lint: install ## ruff and cfn-lint
	$(BIN)/ruff check shared infra functions tests bench
	$(BIN)/cfn-lint template.yaml

validate: install ## lint the template and transform it with the SAM translator
	$(BIN)/cfn-lint template.yaml
	$(BIN)/pytest -q tests/infra

bench: install ## fan-out, cutout, render and check benchmarks (prints JSON lines)
	$(BIN)/python bench/fan_out.py
	$(BIN)/python bench/cutout_quality.py
	$(BIN)/python bench/render_speed.py
	$(BIN)/python bench/fidelity_accuracy.py

screenshot: install system-deps ## refresh the README's picture of the job page (docs/job-page.png)
	LIGHTBOX_SCREENSHOT=docs/job-page.png $(BIN)/pytest -q tests/browser/test_web_app.py -k downloads_the_zip

dev: install ## run the local stack (API, webhooks, web app) on 127.0.0.1:$${LIGHTBOX_PORT:-8787}
	$(BIN)/lightbox dev

deploy: build ## build and deploy to your AWS account (needs AWS credentials)
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam deploy --guided

clean: ## remove the virtualenv and outputs
	rm -rf $(VENV) out .pytest_cache .hypothesis
