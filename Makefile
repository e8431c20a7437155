# Two commands on a fresh clone (each can be run again, and is quick the second time):
#   make sweep   a .venv with CPU torch (TORCH=cuda for the CUDA build) and what a sweep and the explorer need, then
#                the lambda sweep on the embedded data; run again, it continues an unfinished experiment or reports
#                the finished one. SPEC=another.yaml runs another spec; ARGS="..." passes overrides and options,
#                e.g. make sweep ARGS="name=my-run budget.trials=4" or make sweep ARGS="--smoke"
#   make test    the same .venv plus the test tools (pytest, selenium, moto, ...) and a headless Chromium, then ruff
#                and the test suite
#   make explore the explorer on ./runs (ARGS="--experiment NAME ...")
VENV ?= .venv
TORCH ?= cpu
SPEC ?= search_spaces/lambda.yaml
ARGS ?=
PYTHON := $(VENV)/bin/python
TORCH_SPEC := $(if $(filter cuda,$(TORCH)),torch==2.14.1,torch==2.13.0)
# One stamp per install: the base (a sweep and the explorer) and the test tools on top of it.
BASE_STAMP := $(VENV)/.installed-$(TORCH)
DEV_STAMP := $(VENV)/.installed-dev-$(TORCH)

.PHONY: sweep test setup setup-dev browser explore

sweep: setup
	$(PYTHON) -m platform.makesweep $(SPEC) $(ARGS)

explore: setup
	$(PYTHON) -m dashboards.app $(ARGS)

test: setup-dev browser
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest $(ARGS)

setup: $(BASE_STAMP)

setup-dev: $(DEV_STAMP)

# Reinstalled only when pyproject.toml changes (or the torch build asked for does).
$(BASE_STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install "$(TORCH_SPEC)" .
	rm -f $(VENV)/.installed-*
	touch $@

$(DEV_STAMP): $(BASE_STAMP) pyproject.toml
	$(PYTHON) -m pip install "$(TORCH_SPEC)" ".[dev]"
	touch $@

# The explorer's browser tests drive a real headless Chromium (Debian packages; needs root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get install -y chromium chromium-driver || (apt-get update && apt-get install -y chromium chromium-driver))
