# `make run` and `make test` are the two commands of a fresh machine: each
# installs what is missing (Debian packages, the venv, the package) first.

PYTHON ?= $(shell command -v /usr/bin/python3 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test lint bench fuzz setup host clean

run: setup
	$(BIN)/acap-http up $(ARGS)

test: setup lint
	$(BIN)/pytest

# Not part of test: it times real dockerd restarts and prints ratios.
bench: setup
	$(BIN)/python -m bench.restart $(ARGS)

# Not part of test: the property tests of the HTTP surface, with new seeds, for FUZZ_MINUTES.
FUZZ_MINUTES ?= 10
fuzz: setup
	tools/fuzz $(FUZZ_MINUTES)

lint: setup
	$(BIN)/ruff check acap_http tests bench
	$(BIN)/ruff format --check acap_http tests bench
	$(BIN)/mypy --strict

setup: host $(VENV)/.installed

host:
	@tools/setup-host

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
