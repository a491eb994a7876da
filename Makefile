# Keystream: `make up` starts a dev broker, `make test` runs the whole suite.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# Per-test timeout (s); the whole suite stays well under 30 minutes on 2 cores.
PYTEST_TIMEOUT ?= 300
PYTEST_ARGS ?=

.PHONY: up test test-deps lint gen bench

up:
	PIP_BREAK_SYSTEM_PACKAGES=1 $(PIP) install -e .
	$(PYTHON) -m keystream up

# Installs what the tests need only when something is missing, then lints and tests.
test: test-deps
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

test-deps:
	@$(PYTHON) -c "import keystream.broker, pytest, pytest_timeout, hypothesis, kafka, aiokafka, confluent_kafka, ruff, lz4.frame, zstandard, snappy" 2>/dev/null \
		|| PIP_BREAK_SYSTEM_PACKAGES=1 $(PIP) install -e '.[test]'
	@{ command -v kcat && command -v testssl; } >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y kcat testssl.sh; }

lint:
	$(PYTHON) -m ruff check .

gen:
	$(PYTHON) -m keystream.broker.protocol.codegen

bench:
	$(PYTHON) -m bench.run
