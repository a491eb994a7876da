"""SCRAM users through the standard Admin API against a real broker: confluent-kafka's
alter/describe_user_scram_credentials (librdkafka salts the password), `keystream user add|list|remove`,
credentials surviving a restart and a kill -9, the stored form logging in with the password, and
no password or salted password in the broker's (debug-level) log."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kafka.net.sasl.scram import ScramClient

from keystream.auth.sasl.scram import ScramMechanism as ServerMechanism
from keystream.auth.sasl.scram import salted_password
from keystream.auth.scram_store import ScramStore
from keystream.broker.errors import ErrorCode
from keystream.broker.log import LogManager
from keystream.broker.metadata_log import MetadataLog
from tests.fixtures.broker import BrokerProcess
from tests.integration.test_cli import CLI_TIMEOUT, err, ks, ok

pytestmark = pytest.mark.keystream_only
TIMEOUT = 30
SHA256, SHA512 = ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512
PASSWORDS = {"alice": "Alice-pw-7f3a9c", "bob": "Bob-pw-0e81d2", "carol": "Carol-pw-5b6e44", "dave": "Dave-pw-9a1c07"}


@pytest.fixture
def debug_broker(broker_factory) -> BrokerProcess:
    """A broker logging at debug level, so the no-secrets check covers every log line."""
    b = broker_factory(start=False)
    b.command = lambda: [*BrokerProcess.command(b), "--log-level", "debug"]
    return b.start()


def described(admin: AdminClient, users=None) -> dict[str, list[tuple[str, int]]]:
    if users is None:
        found = admin.describe_user_scram_credentials(request_timeout=TIMEOUT).result()
    else:
        found = {u: f.result() for u, f in admin.describe_user_scram_credentials(users, request_timeout=TIMEOUT).items()}
    return {u: sorted((c.mechanism.name, c.iterations) for c in d.scram_credential_infos) for u, d in found.items()}


def alter(admin: AdminClient, alterations) -> None:
    for f in admin.alter_user_scram_credentials(alterations, request_timeout=TIMEOUT).values():
        f.result()


def _store(broker: BrokerProcess):
    """The stopped broker's credential store, read from its data directory."""
    logs = LogManager([str(d) for d in broker.log_dirs], {})
    logs.load()
    store = ScramStore(MetadataLog(logs))
    store.load()
    return logs, store


def stored(broker: BrokerProcess, user: str, mechanism: str):
    logs, store = _store(broker)
    logs.close()
    return store.lookup(user, mechanism)


def login(broker: BrokerProcess, user: str, password: str, mechanism: str) -> str:
    """Authenticate with kafka-python's SCRAM client against the credentials on the stopped broker's disk."""
    logs, store = _store(broker)
    try:
        client = ScramClient(user, password, mechanism)
        exchange = ServerMechanism(store, mechanism).new_exchange("127.0.0.1")
        client.process_server_first_message(asyncio.run(exchange.step(client.first_message())))
        client.process_server_final_message(asyncio.run(exchange.step(client.final_message())))
        return str(exchange.result.principal)
    finally:
        logs.close()


def assert_no_secrets(broker: BrokerProcess, credentials: dict[str, tuple[str, bytes, int]]) -> None:
    text = broker.log_path.read_bytes()
    assert b"SCRAM" in text  # the alterations were logged (by name), so the log is the right one
    for user, (mechanism, salt, iterations) in credentials.items():
        password = PASSWORDS[user]
        salted = salted_password(password, mechanism, salt, iterations)
        for secret in (password.encode(), salted, salted.hex().encode(), base64.b64encode(salted)):
            assert secret not in text, f"a secret of {user} is in the broker log"


def test_admin_client_lifecycle_and_restart(debug_broker):
    broker = debug_broker
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert described(admin) == {}
    alter(admin, [UserScramCredentialUpsertion("alice", ScramCredentialInfo(SHA512, 8192), PASSWORDS["alice"].encode()),
                  UserScramCredentialUpsertion("bob", ScramCredentialInfo(SHA256, 4096), PASSWORDS["bob"].encode(),
                                               salt=b"bob-salt-0123456789")])
    alter(admin, [UserScramCredentialUpsertion("bob", ScramCredentialInfo(SHA512, 16384), PASSWORDS["bob"].encode())])
    expected = {"alice": [("SCRAM_SHA_512", 8192)], "bob": [("SCRAM_SHA_256", 4096), ("SCRAM_SHA_512", 16384)]}
    assert described(admin) == expected
    assert described(admin, ["bob"]) == {"bob": expected["bob"]}
    with pytest.raises(KafkaException) as e:
        described(admin, ["nobody"])
    assert e.value.args[0].code() == ErrorCode.RESOURCE_NOT_FOUND

    with pytest.raises(KafkaException) as e:  # below Kafka's minimum: refused by the broker
        alter(admin, [UserScramCredentialUpsertion("weak", ScramCredentialInfo(SHA512, 4095), b"pw")])
    assert e.value.args[0].code() == ErrorCode.UNACCEPTABLE_CREDENTIAL
    with pytest.raises(KafkaException) as e:
        alter(admin, [UserScramCredentialDeletion("alice", SHA256)])
    assert e.value.args[0].code() == ErrorCode.RESOURCE_NOT_FOUND

    broker.restart()
    assert described(admin) == expected
    alter(admin, [UserScramCredentialDeletion("bob", SHA256)])
    broker.kill9()  # an acknowledged change survives a crash
    broker.start()
    assert described(admin) == {"alice": [("SCRAM_SHA_512", 8192)], "bob": [("SCRAM_SHA_512", 16384)]}
    broker.stop()

    # librdkafka computed SaltedPassword; the broker's derived keys must accept the password.
    assert login(broker, "alice", PASSWORDS["alice"], "SCRAM-SHA-512") == "User:alice"
    assert login(broker, "bob", PASSWORDS["bob"], "SCRAM-SHA-512") == "User:bob"
    assert_no_secrets(broker, {u: ("SCRAM-SHA-512", stored(broker, u, "SCRAM-SHA-512").salt, i)
                               for u, i in (("alice", 8192), ("bob", 16384))})


def _ks_prompt(*args: str, input: bytes) -> subprocess.CompletedProcess:
    """`keystream ARGS` without a controlling terminal, so the password prompt reads stdin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTREAM_")}
    return subprocess.run([sys.executable, "-m", "keystream", *args], input=input, capture_output=True,
                          timeout=CLI_TIMEOUT, env=env, check=False, start_new_session=True)


def test_cli(debug_broker, tmp_path):
    broker = debug_broker
    bs = ["--bootstrap-server", broker.bootstrap]
    pw_file = tmp_path / "carol.pw"
    pw_file.write_text(PASSWORDS["carol"] + "\nignored second line\n")
    out = ok(ks("user", "add", "carol", "--password-file", str(pw_file), *bs))
    assert "SCRAM-SHA-512" in out and "carol" in out
    ok(ks("user", "add", "carol", "--mechanism", "scram-sha-256", "--iterations", "4096",
          "--password-file", str(pw_file), *bs))
    proc = _ks_prompt("user", "add", "dave", *bs, input=f"{PASSWORDS['dave']}\n{PASSWORDS['dave']}\n".encode())
    ok(proc)
    assert PASSWORDS["dave"] not in proc.stdout.decode() + err(proc)

    listing = ok(ks("user", "list", *bs))
    assert "user-principal 'carol' are SCRAM-SHA-256=iterations=4096, SCRAM-SHA-512=iterations=8192" in listing
    assert "user-principal 'dave' are SCRAM-SHA-512=iterations=8192" in listing
    assert "dave" not in ok(ks("user", "list", "carol", *bs))

    proc = ks("user", "add", "eve", "--iterations", "1000", "--password-file", str(pw_file), *bs)
    assert proc.returncode == 2 and "1000" in err(proc)  # refused before anything is sent
    empty = tmp_path / "empty.pw"
    empty.write_text("")
    assert ks("user", "add", "eve", "--password-file", str(empty), *bs).returncode == 1
    proc = ks("user", "add", "eve", PASSWORDS["carol"], *bs)  # no password on the command line
    assert proc.returncode == 2

    out = ok(ks("user", "remove", "carol", "--mechanism", "SCRAM-SHA-256", *bs))
    assert "Removed SCRAM-SHA-256 credential" in out
    ok(ks("user", "remove", "carol", *bs))
    proc = ks("user", "list", "carol", *bs)
    assert proc.returncode == 1 and "RESOURCE_NOT_FOUND" in err(proc)
    proc = ks("user", "remove", "carol", *bs)
    assert proc.returncode == 1 and "RESOURCE_NOT_FOUND" in err(proc)
    ok(ks("user", "remove", "carol", "--if-exists", *bs))
    assert "carol" not in ok(ks("user", "list", *bs))

    broker.stop()
    assert login(broker, "dave", PASSWORDS["dave"], "SCRAM-SHA-512") == "User:dave"
    assert_no_secrets(broker, {"dave": ("SCRAM-SHA-512", stored(broker, "dave", "SCRAM-SHA-512").salt, 8192)})


def test_cli_over_mtls_with_command_config(broker_factory, tmp_path):
    broker = broker_factory(tls=True)
    admin_conf = ["--command-config", str(broker.tls.client_properties(tmp_path / "admin.properties")),
                  "--bootstrap-server", broker.bootstrap]
    pw_file = tmp_path / "pw"
    pw_file.write_text(PASSWORDS["alice"])
    ok(ks("user", "add", "alice", "--password-file", str(pw_file), *admin_conf))
    assert "'alice' are SCRAM-SHA-512=iterations=8192" in ok(ks("user", "list", *admin_conf))

    other = broker.tls.client("mallory")  # User:CN=mallory, not a super user
    mallory_conf = ["--command-config", str(broker.tls.client_properties(tmp_path / "m.properties", other)),
                    "--bootstrap-server", broker.bootstrap]
    proc = ks("user", "add", "alice", "--password-file", str(pw_file), *mallory_conf)
    assert proc.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in err(proc)
    proc = ks("user", "list", *mallory_conf)
    assert proc.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in err(proc)
