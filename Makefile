# Two commands set up a fresh machine:
#   make demo   builds .venv, the sample catalog and the demo's RL specialists, and runs the
#               full-stack demo backtest on real S&P 500 data
#   make test   installs the dev extra and runs the whole suite (it starts its own servers)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CATALOG ?= data/catalog
DEMO_CONFIG ?= node_configs/backtest/full_stack_sp500.yaml
# The demo's RL specialists: a short seeded training; full_stack_sp500.yaml reads them from here.
DEMO_RL_CONFIG ?= node_configs/rl/demo_sp500.yaml
DEMO_RL_DIR := data/models/rl_demo
PYTEST_ARGS ?=

.PHONY: demo test install install-dev lint catalog clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,ib,ray]"
	@# The tearsheet test renders in headless Chromium (Debian packages); skipped if not installable.
	command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		chromium chromium-driver >/dev/null) || echo "chromium not installed: its test will skip"
	@# The live restart tests start their own redis-server (the cache database; Debian package).
	command -v redis-server >/dev/null || [ "$$(id -u)" != 0 ] || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		redis-server >/dev/null) || echo "redis-server not installed: the restart tests will fail"
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

catalog: install
	$(BIN)/grodt catalog sample --catalog $(CATALOG) --if-missing

# Trained once (about 30 s), again only when the training config or its feature set changes.
$(DEMO_RL_DIR)/specialists/manifest.json: $(DEMO_RL_CONFIG) node_configs/rl/features_daily.yaml | catalog
	rm -rf $(DEMO_RL_DIR)
	$(BIN)/grodt rl train $(DEMO_RL_CONFIG) --catalog $(CATALOG) --run-dir $(DEMO_RL_DIR)

demo: catalog $(DEMO_RL_DIR)/specialists/manifest.json
	$(BIN)/grodt backtest $(DEMO_CONFIG) --catalog $(CATALOG)

# One BLAS thread per process: the suite's model fits run beside engines on 2 cores, and
# oversubscribed BLAS threads made hmmlearn fits ~20x slower there.
test: install-dev
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) runs data/catalog $(DEMO_RL_DIR)
