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

clean:
	rm -rf $(VENV) demo_output .pytest_cache
