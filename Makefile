# nemo-fabric developer targets.
#
#   make test        install missing deps, run the whole pytest suite
#   make test-fast   same, without tests marked `slow`
#   make demo        the RFC 4908 lab end to end (DEMO_OUT=dir for its figures and plot)
#   make bench       run the benchmarks (bench/); ONLY=section runs one section
#   make deps        only install dependencies (Debian packages + .venv)
#   make clean       remove .venv, build artefacts and caches
#
# Variables: PYTHON (interpreter for the venv, >= 3.10, default python3),
# PYTEST_ARGS (extra pytest arguments), ONLY (benchmark section).

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
# Written after a successful `pip install -e .[test,osken,lab]`; it lives inside the venv
# so that deleting the venv also forces a reinstall.
STAMP := $(VENV)/.nemo-fabric-installed
PYTEST_ARGS ?=
ONLY ?=

.DEFAULT_GOAL := test
.PHONY: test test-fast bench demo deps sysdeps clean

test: deps
	$(VPY) -m pytest $(PYTEST_ARGS)

test-fast: deps
	$(VPY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The main job: build the RFC 4908 figure-1 lab, show the bindings, push traffic both
# ways, fail and heal an uplink, print the figures, plot them, tear everything down.
DEMO_OUT ?= demo-output
demo: deps
	$(VENV)/bin/nemo-lab demo --out $(DEMO_OUT)

bench: deps
	@if [ ! -f bench/__main__.py ]; then \
		echo "make bench: bench/__main__.py does not exist yet" >&2; exit 1; \
	fi
	$(VPY) -m bench $(if $(ONLY),--only $(ONLY))

deps: sysdeps $(STAMP)

# Debian packages; only acts when something is missing (see the script).
sysdeps:
	@PYTHON="$(PYTHON)" VENV="$(VENV)" bash scripts/install-deps.sh

# Order-only on sysdeps: python3-venv may have to be installed first.
$(VPY): | sysdeps
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || { \
		echo "ERROR: PYTHON=$(PYTHON) must be Python >= 3.10 (found: $$($(PYTHON) --version 2>&1))." >&2; \
		echo "       Run e.g. 'make PYTHON=python3.11 test'. Python 3.9 is only for the Ryu" >&2; \
		echo "       run of the home agent, whose venv the tests build (tests/integration/ryu39.py)." >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(STAMP): setup.cfg pyproject.toml | $(VPY)
	$(VPY) -m pip install --upgrade pip
	$(VPY) -m pip install -e '.[test,osken,lab]'
	@touch $@

clean:
	rm -rf $(VENV) .venv-ryu39 build dist .eggs *.egg-info .pytest_cache .hypothesis
	find . -path ./.git -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +
