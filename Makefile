# Keystream: `make up` starts a dev broker, `make test` runs the whole suite.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# Per-test timeout (s); the whole suite stays well under 30 minutes on 2 cores.
PYTEST_TIMEOUT ?= 300
PYTEST_ARGS ?=

.PHONY: up test test-deps lint gen bench

# python-ldap and gssapi build from source: .ci/system-deps installs their headers when missing.
up:
	.ci/system-deps build
	PIP_BREAK_SYSTEM_PACKAGES=1 $(PIP) install -e .
	$(PYTHON) -m keystream up

# Installs what the tests need only when something is missing, then lints and tests.
test: test-deps
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

test-deps:
	@.ci/system-deps test
	@$(PYTHON) -c "import keystream.broker, keystream.registry, aiohttp, fastavro, avro, authlib, pytest, pytest_timeout, hypothesis, kafka, aiokafka, confluent_kafka, ruff, lz4.frame, zstandard, snappy, ldap, gssapi, grpc, grpc_health, grpc_tools, google.protobuf" 2>/dev/null \
		|| PIP_BREAK_SYSTEM_PACKAGES=1 $(PIP) install -e '.[test]'

lint:
	$(PYTHON) -m ruff check .

gen:
	$(PYTHON) -m keystream.broker.protocol.codegen
	$(PYTHON) -m keystream.broker.admin.gen

bench:
	$(PYTHON) -m bench.run
