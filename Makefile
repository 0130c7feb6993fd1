# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test lint bench lab clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# the package with what the demo needs
$(VENV)/.installed-demo: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e ".[all]"
	touch $@

# the package with the test tools
$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed-demo
	$(VENV)/bin/nbops demo

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests benchmarks

test: $(VENV)/.installed-dev lint
	$(PY) -m pytest

# Peers for benchmarks live in their own environments, never in nbops' dependencies.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet "mlflow==3.17.2" -e ".[serve]"
	touch $@

bench: $(BENCH_VENV)/.installed bench-drift
	$(BENCH_VENV)/bin/python benchmarks/bench_tracking.py

# Evidently 0.7.23 does not import with pandas 3: its own environment with pandas < 3.
EVIDENTLY_VENV := .venv-bench-evidently
$(EVIDENTLY_VENV)/.installed:
	$(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/pip install --quiet --upgrade pip
	$(EVIDENTLY_VENV)/bin/pip install --quiet "evidently==0.7.23" "pandas<3" pyarrow
	touch $@

.PHONY: bench-evidently-venv bench-drift
bench-evidently-venv: $(EVIDENTLY_VENV)/.installed

bench-drift: $(VENV)/.installed-dev $(EVIDENTLY_VENV)/.installed
	$(PY) benchmarks/bench_drift.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
