# The two commands a newcomer needs:  make run  |  make test
# Both create the virtual environment .venv on first use (Python >= 3.11, gcc).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: venv run test test-fast lint bench bench-store bench-forward bench-ingest bench-app soak-forward check-config dist check-dist clean help

help:
	@echo "make run          start the gateway on the embedded default config (demo ERP, 127.0.0.1:8780)"
	@echo "make test         run the whole test suite on the Cython core, then on the pure-Python fallback"
	@echo "make lint         ruff + mypy + lint-imports (the import contract in pyproject.toml)"
	@echo "make bench        python -m benchmarks core   (bench-store, bench-forward, bench-ingest, bench-app: the others)"
	@echo "make soak-forward SIGKILL soak of store-and-forward (KILLS=1000)"
	@echo "make check-config validate config/ (gateway.toml + rules)"
	@echo "make dist         offline install archive: dist/edge-gateway-<version>-py<XY>-<platform>.tar.gz"
	@echo "make check-dist   make dist, then install it into a fresh venv with no network (what CI runs)"

$(VENV)/.installed: pyproject.toml setup.py core_ext/_core.pyx
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel "cython>=3.0"
	$(PY) -m pip install --quiet --no-build-isolation -e '.[dev]'
	$(PY) -c "import core_ext; print('core_ext implementation:', core_ext.IMPLEMENTATION)"
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/gateway run

# The suite runs twice: on the compiled core (which must be there), then with
# GATEWAY_NO_EXTENSIONS=1 on the pure-Python fallback. Core tests are also parametrised
# over both implementations inside each run.
test: $(VENV)/.installed
	GATEWAY_REQUIRE_EXTENSION=1 $(PY) -m pytest -q $(PYTEST_ARGS)
	GATEWAY_NO_EXTENSIONS=1 $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -x $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check gateway core_ext devices benchmarks tests setup.py
	$(VENV)/bin/mypy gateway core_ext devices
	$(VENV)/bin/lint-imports --no-cache

bench: $(VENV)/.installed
	$(PY) -m benchmarks core

bench-store: $(VENV)/.installed
	$(PY) -m benchmarks store

bench-forward: $(VENV)/.installed
	$(PY) -m benchmarks forward

bench-ingest: $(VENV)/.installed
	$(PY) -m benchmarks ingest

bench-app: $(VENV)/.installed
	$(PY) -m benchmarks app

# SIGKILL soak of store-and-forward: KILLS=1000 by default (about 2 s per kill)
KILLS ?= 1000
soak-forward: $(VENV)/.installed
	$(PY) -m tests.soak_forward --kills $(KILLS)

check-config: $(VENV)/.installed
	$(VENV)/bin/gateway check-config config/

# The offline install archive for this machine's architecture and this venv's Python
# (tools/build-dist says what it holds; install-README: how to build one for an ARM box).
dist: $(VENV)/.installed
	PY=$(PY) tools/build-dist

# Unpack the newest archive, install it into a fresh venv without network, run it.
check-dist: dist
	tools/check-offline-install

clean:
	rm -rf build *.egg-info core_ext/_core.c core_ext/*.so .pytest_cache .mypy_cache .ruff_cache
