# Cutout developer entry points. Every target installs what it needs: a fresh clone runs
# `make test` or `make demo` with nothing but Python, make and the package registries.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Prefer the Lambda runtime's Python (3.13); fall back to python3. pyenv shims answer
# `command -v python3.13` even when 3.13 is not the active version, so probe by running it.
PYTHON_BOOT := $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3; do \
	"$$p" -c 'import sys' >/dev/null 2>&1 && { command -v "$$p" 2>/dev/null || echo "$$p"; } && break; done)
PY313_DIR := $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13); do \
	"$$p" -c 'import sys,os; print(os.path.dirname(sys.executable))' 2>/dev/null && break; done)

VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .tools/sam
CHECKOV_VENV := .tools/checkov
SAM := $(SAM_VENV)/bin/sam
CHECKOV := $(CHECKOV_VENV)/bin/checkov
STAMP := $(VENV)/.installed
# Two workers on two cores; a file stays on one worker (its module fixtures and stacks are its own).
PYTEST_ARGS ?= -n auto --dist loadfile

export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) with $(PYTHON_BOOT)"
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# SAM CLI and checkov live in their own environments: their pins clash with the dev
# dependencies (and with each other). The executable appears last, so an interrupted install
# is simply redone.
$(SAM):
	@echo "==> installing aws-sam-cli into its own environment ($(SAM_VENV))"
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli>=1.140,<2'

$(CHECKOV):
	@echo "==> installing checkov into its own environment ($(CHECKOV_VENV))"
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov>=3.2,<4'

.PHONY: install
install: $(STAMP) ## Create the dev environment (.venv)

# Headless Chromium for the before/after page's browser test and `make demo-image`. CI starts from a clean
# Debian machine as root: install the distribution's package when no Chromium is on PATH.
.PHONY: chromium
chromium:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "==> installing chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "headless Chromium is needed: install it, or set CHROMIUM=/path/to/chrome"; exit 1; fi

.PHONY: lint
lint: $(STAMP) ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: format
format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: lint-template
lint-template: $(STAMP) $(SAM) ## sam validate --lint, cfn-lint with serverless rules
	$(SAM) validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)
	$(VENV)/bin/cfn-lint --template template.yaml --append-rules cfn_lint_serverless.rules

.PHONY: checkov
checkov: $(CHECKOV) ## checkov over the template (suppressions are justified in place)
	$(CHECKOV) --quiet --compact --skip-download -f template.yaml --framework cloudformation

.PHONY: build
build: $(SAM) ## sam build (no Docker; needs python3.13 on PATH)
	@test -n "$(PY313_DIR)" || { echo "sam build needs python3.13 (the Lambda runtime) on PATH"; exit 1; }
	PATH="$(PY313_DIR):$$PATH" $(SAM) build --template template.yaml

# `make test` builds too where the runtime's Python exists (sam build cannot target python3.13 without it).
.PHONY: build-check
build-check:
	@if [ -n "$(PY313_DIR)" ]; then $(MAKE) --no-print-directory build; \
	else echo "warning: python3.13 not found; skipping sam build (install Python 3.13 to check it)"; fi

.PHONY: test
IAM_REPORT := .iam-report

# The suite runs with every function's calls checked against its role (local_stack/iam); what each grant allowed
# is recorded in $(IAM_REPORT), and iam-check then shows every statement of every role is needed.
test: $(STAMP) chromium lint lint-template checkov build-check ## Everything CI checks: lint, template lint, checkov, sam build, the test suite, the IAM mutation check
	rm -rf $(IAM_REPORT)
	CUTOUT_IAM_REPORT_DIR=$(IAM_REPORT) $(PY) -m pytest $(PYTEST_ARGS)
	$(PY) -m cutout_dev.iam_check --reports $(IAM_REPORT)

.PHONY: iam-check
iam-check: $(STAMP) ## The suite, then remove each IAM grant in turn and show a test fails; writes docs/iam.md
	rm -rf $(IAM_REPORT)
	CUTOUT_IAM_REPORT_DIR=$(IAM_REPORT) $(PY) -m pytest $(PYTEST_ARGS)
	$(PY) -m cutout_dev.iam_check --reports $(IAM_REPORT) --write docs/iam.md

.PHONY: test-fast
test-fast: $(STAMP) chromium ## The test suite only
	$(PY) -m pytest $(PYTEST_ARGS)

# One suite at a time, as the tree has them (README, "Tests"): `make test-unit`, `make test-e2e`, ...
SUITES := unit infrastructure tooling integration contract e2e
.PHONY: $(addprefix test-,$(SUITES))
$(addprefix test-,$(SUITES)): test-%: $(STAMP) chromium ## One suite: test-unit, -infrastructure, -tooling, -integration, -contract, -e2e
	$(PY) -m pytest $(PYTEST_ARGS) tests/$*

.PHONY: complex
complex: $(STAMP) ## The complexity gate: ruff's C901/PLR size rules, then the largest module and function per tree
	$(VENV)/bin/ruff check --select C90,PLR0911,PLR0912,PLR0915 layers functions src
	$(PY) -m cutout_dev.sizes

# The emulator whatever the environment holds; DEMO_ARGS="--real-magic-hour" asks for the paid API (confirmed).
.PHONY: demo
demo: $(STAMP) ## The whole pipeline on the local stack, offline; cutouts and a before/after page in demo-output/
	$(PY) -m cutout_dev.demo $(DEMO_ARGS)

.PHONY: demo-image
demo-image: $(STAMP) chromium ## Regenerate docs/demo.png (and its first card, docs/renditions.png), rendered headless
	$(PY) -m cutout_dev.demo
	$(PY) -m cutout_dev.browser screenshot demo-output/index.html docs/demo.png --height 1040
	$(PY) -m cutout_dev.browser screenshot demo-output/index.html docs/renditions.png --width 640 --height 740

.PHONY: docs-figures
docs-figures: $(STAMP) ## Rewrite the figures in README.md and docs/ from bench/*.json
	$(PY) -m cutout_dev.docs_figures

.PHONY: recipes
recipes: $(STAMP) ## Run the README's local recipes as written; transcript in docs/local-recipes.md
	$(PY) -m cutout_dev.recipes

.PHONY: local-up
local-up: $(STAMP) ## Long-running local stack (Ctrl-C stops it)
	$(PY) -m cutout_dev.cli local up

.PHONY: bench
bench: $(STAMP) ## Benchmarks: cold start, per-record cost, end to end, footprint (docs/benchmarks.md)
	$(PY) -m cutout_dev.bench

.PHONY: soak
soak: $(STAMP) ## Fault-injection soak through the local stack (docs/soak.md)
	$(PY) -m cutout_dev.soak

.PHONY: flood
flood: $(STAMP) ## 2,000 uploads at once against a plan of 50 (20 s renders), queue and reject modes (docs/scale.md)
	$(PY) -m cutout_dev.flood $(FLOOD_ARGS)

.PHONY: clean
clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache demo-output local-up.log
