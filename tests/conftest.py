"""Shared pytest fixtures: real broker processes.

- `broker`: a fresh broker for one test (its own data directory and port); stopped with SIGTERM at
  the end, and the test fails if it does not exit cleanly with code 0 or if its log holds a
  Python traceback (an unexpected exception is a bug even when clients cope with it).
- `shared_broker`: one broker per test module, for tests that only need a running broker; they
  must use topic and group names of their own (`unique_name()`).
- `broker_factory`: `broker_factory(**overrides)` starts a broker with extra properties, for one test.
- `module_broker_factory`: the same, but the brokers live for the whole module.
- `listener_broker` / `shared_listener_broker`: like `broker` / `shared_broker`, parametrized over
  `plaintext` and `mtls` (an SSL listener requiring client certificates, `broker.tls` set). Reach
  them with the tests.fixtures.clients helpers given the broker (`create_topic(broker, ...)`,
  `client_conf(broker)`, `kcat_args(broker)`, `wire(broker)`...) and the same test body runs over both.
- `slapd`: a real OpenLDAP server per test module (tests/fixtures/slapd.py: TLS, users and groups);
  `private_slapd`: one for a single test, which may stop, pause or restart it.
- `kdc`: a real MIT Kerberos KDC for the whole session (tests/fixtures/kdc.py: realm KEYSTREAM.TEST,
  service kafka/localhost, users alice and bob with keytabs); it exports KRB5_CONFIG.

When a test fails, the tail of every running broker's log is attached to its report.

`KEYSTREAM_TEST_PEER=tansu` runs the client-side tests against the peer broker tansu instead
(in-memory, so restarts and on-disk checks do not apply); it is only for checking test code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# `tests.fixtures` must import whether pytest runs as `pytest` or `python -m pytest`.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.fixtures.broker import BrokerProcess, TansuProcess  # noqa: E402
from tests.fixtures.kdc import Kdc  # noqa: E402
from tests.fixtures.process import LIVE  # noqa: E402
from tests.fixtures.slapd import LIVE as SLAPD_LIVE  # noqa: E402
from tests.fixtures.slapd import Slapd  # noqa: E402

settings.register_profile(
    "keystream",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "keystream-ci",
    parent=settings.get_profile("keystream"),
    derandomize=True,
    database=None,
    print_blob=True,
)
# CI runs are derandomized (the same examples every run); local runs explore new ones.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "keystream-ci" if os.environ.get("CI") else "keystream"))

PEER = os.environ.get("KEYSTREAM_TEST_PEER", "")


def _broker_class():
    if PEER == "tansu":
        return TansuProcess
    if PEER:
        raise pytest.UsageError(f"unknown KEYSTREAM_TEST_PEER={PEER!r} (only 'tansu')")
    return BrokerProcess


def pytest_configure(config):
    config.addinivalue_line("markers", "keystream_only: needs Keystream itself (skipped against a peer broker)")
    # kafka-python 3.0 loads its schemas with deprecated importlib.resources calls.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:kafka.protocol.schemas.load_json")
    config.addinivalue_line("filterwarnings", "ignore:.*is deprecated. Use files\\(\\) instead:DeprecationWarning")


def pytest_collection_modifyitems(config, items):
    if not PEER:
        return
    skip = pytest.mark.skip(reason=f"needs Keystream itself, not the peer {PEER}")
    for item in items:
        if "keystream_only" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for b in list(LIVE):
            report.sections.append((f"{b.kind} log {b.where} ({b.log_path})", b.tail_log(150)))
        for d in list(SLAPD_LIVE):
            report.sections.append((f"slapd log {d.url} ({d.log_path})", d.tail_log(150)))
    return report


class _Factory:
    def __init__(self, base: Path):
        self.base = base
        self.brokers: list[BrokerProcess] = []

    def __call__(self, *, start: bool = True, **overrides) -> BrokerProcess:
        d = self.base / f"broker{len(self.brokers)}"
        b = _broker_class()(d, **overrides)
        self.brokers.append(b)
        if start:
            b.start()
        return b

    def close(self, *, check: bool) -> None:
        """Stop every broker (SIGTERM, exit code 0) and fail if any logged a traceback."""
        errors = []
        for b in self.brokers:
            if b.running:
                try:
                    b.stop(check=check)
                except AssertionError as exc:
                    errors.append(str(exc))
            if check:
                errors += [f"unexpected exception in {b.log_path}:\n{tb}" for tb in b.tracebacks()]
        assert not errors, "\n".join(errors)


@pytest.fixture
def broker_factory(tmp_path, request):
    factory = _Factory(tmp_path)
    yield factory
    factory.close(check=PEER == "")


@pytest.fixture
def broker(broker_factory) -> BrokerProcess:
    """A fresh broker for this test; it must shut down cleanly (exit code 0) at the end."""
    return broker_factory()


@pytest.fixture(scope="module")
def module_broker_factory(tmp_path_factory):
    factory = _Factory(tmp_path_factory.mktemp("brokers"))
    yield factory
    factory.close(check=PEER == "")


@pytest.fixture(scope="module")
def shared_broker(module_broker_factory) -> BrokerProcess:
    """One broker for the whole test module (use unique topic and group names)."""
    return module_broker_factory()


@pytest.fixture(scope="module")
def slapd(tmp_path_factory) -> Slapd:
    """A real slapd shared by the module's tests; they must leave it running."""
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_slapd(tmp_path) -> Slapd:
    """A real slapd for one test, which may stop, pause and restart it."""
    server = Slapd(tmp_path / "slapd")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kdc(tmp_path_factory) -> Kdc:
    """One KDC per session: its environment (KRB5_CONFIG...) is process-wide, so one realm at a time."""
    server = Kdc(tmp_path_factory.mktemp("kdc"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mechanism(kdc):
    """make(**overrides) -> a GssapiMechanism on the session KDC's keytab, closed afterwards."""
    from keystream.auth.sasl.kerberos import GssapiMechanism
    from keystream.config import Config

    made = []

    def make(**overrides):
        m = GssapiMechanism(Config(kdc.properties(**overrides)))
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


# The mTLS variant needs Keystream's SSL listener (the peer broker has none).
LISTENERS = ["plaintext", pytest.param("mtls", marks=pytest.mark.keystream_only)]


@pytest.fixture(params=LISTENERS)
def listener_broker(request, broker_factory) -> BrokerProcess:
    """A fresh broker for this test, once with a PLAINTEXT and once with an mTLS listener."""
    return broker_factory(tls=request.param == "mtls")


@pytest.fixture(scope="module", params=LISTENERS)
def shared_listener_broker(request, module_broker_factory) -> BrokerProcess:
    """One broker per module and listener kind (PLAINTEXT, mTLS); use unique topic and group names."""
    return module_broker_factory(tls=request.param == "mtls")


@pytest.fixture(scope="module")
def registry_factory(tmp_path_factory):
    """registry_factory(broker, **overrides) -> a started schema registry (tests/fixtures/registry.py)
    on `broker` (tls=True), for the whole module; at the end each must exit cleanly with no traceback."""
    from tests.fixtures.registry import RegistryProcess

    base = tmp_path_factory.mktemp("registries")
    made: list[RegistryProcess] = []

    def make(broker, *, start: bool = True, **overrides) -> RegistryProcess:
        registry = RegistryProcess(base / f"registry{len(made)}", broker, **overrides)
        made.append(registry)
        return registry.start() if start else registry

    yield make
    errors = []
    for registry in made:
        if registry.running:
            try:
                registry.stop()
            except AssertionError as exc:
                errors.append(str(exc))
        errors += [f"unexpected exception in {registry.log_path}:\n{tb}" for tb in registry.tracebacks()]
    assert not errors, "\n".join(errors)
