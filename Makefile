# `make run` and `make test` are the two commands of a fresh machine: each
# installs what is missing (Debian packages, the venv, the package) first.

PYTHON ?= $(shell command -v /usr/bin/python3 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test lint sanity bench soak fuzz fleet rotate fleet-bench setup host install uninstall clean
N ?= 3
FLEET_DIR ?= var/fleet
PREFIX ?= /opt/acap-http

run: setup
	$(BIN)/acap-http up $(ARGS)

test: setup lint sanity
	$(BIN)/pytest $(PYTEST_ARGS)

# ansible-test sanity on the collection (acap_http.dockerdwrapper).
sanity: setup
	tools/ansible-sanity

# Not part of test: it times real dockerd restarts, then the API's front against dockerd's own TLS,
# and prints ratios; both run, and it fails if either missed a target.
bench: setup
	$(BIN)/python -m bench.restart $(ARGS); restart=$$?; $(BIN)/python -m bench.apifront; front=$$?; \
	exit $$((restart || front))

# Not part of test: up, rootless, three containers, random operations and failures for SOAK_MINUTES,
# checked after each (SOAK_SEED repeats a run); it exits non-zero naming each target missed.
SOAK_MINUTES ?= 10
soak: setup
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python -m bench.soak

# Not part of test: the property tests of the HTTP surface, with new seeds, for FUZZ_MINUTES.
FUZZ_MINUTES ?= 10
fuzz: setup
	tools/fuzz $(FUZZ_MINUTES)

# Several instances on this host, each its own app user and 127.0.0.K addresses; an inventory of them.
fleet: setup
	$(BIN)/acap-http fleet --count $(N) --dir $(FLEET_DIR)

# The rotation playbook against that inventory (make fleet running in another shell), with as many
# forks as a batch has hosts (rotate_serial, 5 by default: FORKS=10 ARGS="-e rotate_serial=10").
FORKS ?= 5
rotate: setup
	env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE $(BIN)/ansible-playbook -i $(FLEET_DIR)/inventory.yml \
		-f $(FORKS) ansible/playbooks/rotate.yml $(ARGS)

# Not part of test: a rolling rotation of N instances, timed, with containers running; it prints its
# figures against their targets and fails if one is missed (ARGS="--serial 10": batches of 10).
fleet-bench: setup
	$(BIN)/python -m bench.fleet --count $(N) $(ARGS)

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
	$(BIN)/pip install --quiet --editable '.[test,fleet]'
	# The collection, installed where the ansible package keeps its own (a link: edits take effect).
	ln -sfn $(CURDIR)/ansible/ansible_collections/acap_http \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ansible_collections/acap_http"
	touch $@

# As root, on a host with systemd: `acap-http serve` as a service (README, "Run it as a service"):
# the Debian packages it needs, the program in PREFIX, then `acap-http install` (ARGS: its options).
# install runs from the checkout with the system's Python (it needs no package of PyPI's): it
# checks and claims PREFIX, makes the virtual environment there itself, and records what it made.
install:
	@[ "$$(id -u)" -eq 0 ] || { echo "make install: run it as root" >&2; exit 1; }
	@tools/setup-host --service
	PYTHONPATH=$(CURDIR) $(PYTHON) -m acap_http install --prefix $(PREFIX) $(ARGS)

uninstall:
	PYTHONPATH=$(CURDIR) $(PYTHON) -m acap_http install --uninstall --prefix $(PREFIX) $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
