# Two commands on a fresh clone (each can be run again, and is quick the second time):
#   make sweep   a .venv with CPU torch (TORCH=cuda for the CUDA build), then the lambda sweep on the embedded data
#   make test    the same .venv plus what the tests need (a headless Chromium), then ruff and the test suite
VENV ?= .venv
TORCH ?= cpu
PYTHON := $(VENV)/bin/python
TORCH_SPEC := $(if $(filter cuda,$(TORCH)),torch==2.14.1,torch==2.13.0)

.PHONY: sweep test setup browser explore

sweep: setup
	$(PYTHON) -m platform.sweep search_spaces/lambda.yaml

explore: setup
	$(PYTHON) -m dashboards.app

test: setup browser
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest

setup: $(VENV)/.installed-$(TORCH)

# Reinstalled only when pyproject.toml changes (or the torch build asked for does).
$(VENV)/.installed-$(TORCH): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install "$(TORCH_SPEC)" ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

# The explorer's browser tests drive a real headless Chromium (Debian packages; needs root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get install -y chromium chromium-driver || (apt-get update && apt-get install -y chromium chromium-driver))
