# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test lint bench lab clean browser labext screenshots

$(VENV)/bin/python:
	@echo "==> creating the virtual environment $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# the package with what the demo needs
$(VENV)/.installed-demo: pyproject.toml | $(VENV)/bin/python
	@echo "==> installing nbops and what the demo needs into $(VENV) (a few minutes the first time)"
	$(PIP) install --progress-bar off -e ".[all]"
	@touch $@

# the package with the test tools
$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	@echo "==> installing nbops with its test tools into $(VENV) (a few minutes the first time)"
	$(PIP) install --progress-bar off -e ".[dev]"
	@echo "==> the KServe SDK for the OIP client and manifest tests (without its pins: it caps pandas < 3)"
	$(PIP) install --progress-bar off --no-deps "kserve==0.21.0" "cloudevents>=1.6,<2" deprecation \
	  grpc-interceptor grpcio grpcio-tools tabulate timing-asgi python-multipart pyjwt watchfiles
	@touch $@

# a fresh demo store each time (an earlier one is moved to demo_output/store.previous)
demo: $(VENV)/.installed-demo
	@echo "==> running the example notebooks (about two minutes)"
	@$(VENV)/bin/nbops demo

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports

test: $(VENV)/.installed-dev lint browser labext postgres
	$(PY) -m pytest

# -- PostgreSQL for the sync tests ------------------------------------------------------
# tests/test_sync_postgres.py runs `mlflow server` on a real PostgreSQL, as teams do. Its
# fixture makes a throwaway cluster in a temporary folder (initdb, pg_ctl on 127.0.0.1) and
# stops it after; this only makes sure Debian's server binaries are there (no service is
# started or enabled). Installed when missing and root, after saying what and why.
.PHONY: postgres
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  echo "==> the sync tests run an MLflow server on PostgreSQL, and its server binaries (initdb, pg_ctl) are missing"; \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "==> installing Debian's postgresql (server binaries only; the tests start and stop their own cluster)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else echo "make: install it as root (apt-get install postgresql); until then that test is skipped"; fi; \
	fi

# -- JupyterLab extension and the browser its test drives ------------------------------
# Debian's chromium (never a downloaded browser) for tests/ui; installed when missing and
# root, after saying what and why. CHROMIUM and APT_GET are variables so a test can try it.
CHROMIUM ?= /usr/bin/chromium
APT_GET  ?= apt-get
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "==> the browser tests (tests/ui) drive JupyterLab in Debian's chromium, and $(CHROMIUM) is missing"; \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "==> installing the system package chromium with its dependencies (about 130 Debian packages): $(APT_GET) install chromium"; \
	    $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq chromium; \
	  else echo "make: install it as root (apt-get install chromium); until then those tests are skipped"; fi; \
	fi

# The browser tests write their screenshots to tests/ui/screenshots/ (git-ignored), so
# `make test` changes no tracked file; this target writes them into docs/img on purpose.
screenshots: $(VENV)/.installed-dev browser labext
	NBOPS_SCREENSHOTS=docs/img NBOPS_UPDATE_SCREENSHOTS=1 $(PY) -m pytest -p no:cacheprovider \
	  tests/ui tests/test_registry_lab.py

LABEXT_SRC := $(wildcard labextension/src/*.ts labextension/style/* labextension/schema/*.json) \
              labextension/package.json labextension/tsconfig.json
LABEXT_OUT := src/nbops/labextension/package.json

labextension/node_modules/.package-lock.json: labextension/package-lock.json
	cd labextension && npm ci --no-audit --no-fund

$(LABEXT_OUT): $(LABEXT_SRC) labextension/node_modules/.package-lock.json | $(VENV)/.installed-dev
	cd labextension && PATH="$(abspath $(VENV))/bin:$$PATH" npm run build:prod

# build the prebuilt extension and install it into the venv's JupyterLab (a copy, as
# pip installs it: a link would let pip's uninstall delete the build); enable the server
# extension
labext: $(LABEXT_OUT)
	@mkdir -p $(VENV)/share/jupyter/labextensions $(VENV)/etc/jupyter/jupyter_server_config.d
	@rm -rf $(VENV)/share/jupyter/labextensions/nbops-labextension
	cp -r src/nbops/labextension $(VENV)/share/jupyter/labextensions/nbops-labextension
	cp jupyter-config/jupyter_server_config.d/nbops.json $(VENV)/etc/jupyter/jupyter_server_config.d/

# JupyterLab on the example notebooks, with the nbops sidebar (loopback only)
lab: $(VENV)/.installed-dev labext
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=example_notebooks \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

# Peers for benchmarks live in their own environments, never in nbops' dependencies.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet "mlflow==3.17.2" -e ".[serve]"
	touch $@

bench: $(BENCH_VENV)/.installed bench-drift bench-serving bench-server
	$(BENCH_VENV)/bin/python benchmarks/bench_tracking.py
	$(BENCH_VENV)/bin/python benchmarks/bench_store.py
	$(BENCH_VENV)/bin/python benchmarks/bench_sync.py
	$(BENCH_VENV)/bin/python benchmarks/bench_compare.py
	$(BENCH_VENV)/bin/python benchmarks/bench_registry.py
	$(PY) benchmarks/report.py

# nbops serve.py vs `mlflow models serve` and Seldon's MLServer (OIP v2); the load
# generator runs in nbops' venv
MLSERVER_VENV := .venv-bench-mlserver
.PHONY: bench-serving
bench-serving: $(VENV)/.installed-dev $(BENCH_VENV)/.installed $(MLSERVER_VENV)/.installed
	$(PY) benchmarks/bench_serving.py

# Seldon's MLServer 1.7.1 (OIP v2) for bench_serving.py, in its own environment
$(MLSERVER_VENV)/.installed:
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/pip install --quiet --upgrade pip
	$(MLSERVER_VENV)/bin/pip install --quiet "mlserver==1.7.1" "mlserver-sklearn==1.7.1"
	touch $@

.PHONY: bench-mlserver-venv
bench-mlserver-venv: $(MLSERVER_VENV)/.installed

# the nbops server extension's runs endpoint vs MLflow's runs/search, 10,000 runs each
.PHONY: bench-server
bench-server: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/bench_server.py

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
