"""`keystream tenant` and `keystream quota` against a real broker's gRPC admin API, run as a user runs
them (`python -m keystream ...` subprocesses, so exit codes and stderr are the real ones): the whole
tenant lifecycle, a member working inside its namespace with the other CLI commands and its usage
showing in `describe`, a tenant admin's narrower view, and bad input answered with a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.fixtures.admin_grpc import admin_broker
from tests.fixtures.broker import free_port
from tests.fixtures.clients import create_topic
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.keystream_only

CLI_TIMEOUT = 60


def ks(*args: str, input: bytes = b"") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTREAM_")}
    return subprocess.run([sys.executable, "-m", "keystream", *args], input=input, capture_output=True,
                          timeout=CLI_TIMEOUT, env=env, check=False)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr.decode()}"
    return proc.stdout.decode()


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    return admin_broker(module_broker_factory)


@pytest.fixture(scope="module")
def files(broker, tmp_path_factory):
    """--command-config files: the cluster admin (super user), an acme member and an acme admin."""
    d = tmp_path_factory.mktemp("cli-tenant")
    return {who: str(broker.tls.client_properties(d / f"{who}.properties",
                                                  None if who == "admin" else broker.tls.client(who, common_name=who)))
            for who in ("admin", "acme-dev", "acme-boss")}


def admin(broker, files, who: str = "admin") -> list[str]:
    return ["--admin-url", broker.admin_target, "--command-config", files[who]]


def kafka(broker, files, who: str) -> list[str]:
    return ["--bootstrap-server", broker.bootstrap, "--command-config", files[who]]


def test_tenant_lifecycle_through_the_cli(broker, files):
    a = admin(broker, files)
    out = ok(ks("tenant", "create", "acme", "--principal", "User:alice", "--principal", "Group:acme-devs",
                "--produce-byte-rate", "10MB", "--fetch-byte-rate", "20MB", "--max-partitions", "200",
                "--max-storage-bytes", "50GB", *a))
    assert out == "Created tenant 'acme' (prefix 'acme.').\n"
    assert "acme" in ok(ks("tenant", "list", *a)).split()
    assert [t["name"] for t in json.loads(ok(ks("tenant", "list", "--output", "json", *a)))] == ["acme"]
    text = ok(ks("tenant", "describe", "acme", *a))
    assert text.splitlines()[:5] == [
        "Tenant: acme\tPrefix: acme.",
        "\tMembers: Group:acme-devs, User:alice",
        "\tAdmins: -",
        "\tQuotas: consumer_byte_rate=20000000, producer_byte_rate=10000000",
        "\tLimits: max_partitions=200, max_storage_bytes=50000000000",
    ]
    assert text.splitlines()[5].startswith("\tUsage: topics=0, partitions=0, storage_bytes=0, bytes_in=0")

    # update: members and admins one by one, a quota, a limit set and one lifted; the rest kept
    d = json.loads(ok(ks("tenant", "update", "acme", "--add-principal", "User:CN=acme-dev", "--add-admin",
                         "User:CN=acme-boss", "--remove-principal", "Group:acme-devs", "--produce-byte-rate", "5MB",
                         "--max-partitions", "300", "--remove-limit", "max_storage_bytes", "--output", "json", *a)))
    assert d["members"] == ["User:CN=acme-boss", "User:CN=acme-dev", "User:alice"]
    assert d["admins"] == ["User:CN=acme-boss"]
    assert d["quotas"] == {"consumer_byte_rate": 20e6, "producer_byte_rate": 5e6}
    assert (d["max_partitions"], d["max_storage_bytes"]) == (300, None)

    # a member works inside acme. with the Kafka-side commands, and sees nothing else
    create_topic(broker, "globex.secret")
    dev = kafka(broker, files, "acme-dev")
    ok(ks("topic", "create", "--topic", "acme.orders", "--partitions", "3", *dev))
    ok(ks("produce", "--topic", "acme.orders", *dev, input=b"".join(b"order %d\n" % i for i in range(20))))
    got = ok(ks("consume", "--topic", "acme.orders", "--group", "acme.cli", "--from-beginning",  # a group of acme.
                "--max-messages", "20", "--timeout-ms", "30000", *dev))
    assert sorted(got.splitlines()) == sorted(f"order {i}" for i in range(20))
    assert ok(ks("topic", "list", *dev)).split() == ["acme.orders"]
    # without --group the throwaway console-consumer-N group is outside acme.: refused, and the command
    # fails as Kafka's console consumer does (it used to print a warning and exit 0 having read nothing)
    refused = ks("consume", "--topic", "acme.orders", "--from-beginning", "--timeout-ms", "20000", *dev)
    assert refused.returncode == 1 and b"GROUP_AUTHORIZATION_FAILED" in refused.stderr, refused.stderr
    refused = ks("consume", "--topic", "globex.secret", "--group", "acme.g", "--timeout-ms", "20000", *dev)
    assert refused.returncode == 1 and b"TOPIC_AUTHORIZATION_FAILED" in refused.stderr, refused.stderr

    def stored():  # storage is recounted from the segment files every few hundred ms
        u = json.loads(ok(ks("tenant", "describe", "acme", "--output", "json", *a)))["usage"]
        return u if u["storage_bytes"] > 0 else None
    u = wait_for(stored, 20, message="acme's storage to show in describe")
    assert (u["topics"], u["partitions"]) == (1, 3)
    assert u["bytes_in"] > 0 and u["bytes_out"] > 0
    print(f"acme usage after 20 records: {u}")
    assert "storage_bytes=" in ok(ks("tenant", "describe", "acme", *a)).splitlines()[5]

    # quotas of Kafka's entities next to the tenant's
    ok(ks("quota", "set", "--user", "CN=acme-dev", "--produce-byte-rate", "1MB", *a))
    ok(ks("quota", "set", "--user", "CN=acme-dev", "--client-id", "batch", "--add-config",
          "consumer_byte_rate=2097152,request_percentage=50", *a))
    out = ok(ks("quota", "set", "--default-client-id", "--request-percentage", "80", *a))
    assert out == "Set: Quota configs for the default client-id are request_percentage=80.\n"
    rows = json.loads(ok(ks("quota", "list", "--output", "json", *a)))
    assert rows == [
        {"entity": {"user": "CN=acme-dev"}, "quotas": {"producer_byte_rate": 1e6}},
        {"entity": {"user": "CN=acme-dev", "client-id": "batch"},
         "quotas": {"consumer_byte_rate": 2097152.0, "request_percentage": 50.0}},
        {"entity": {"client-id": None}, "quotas": {"request_percentage": 80.0}},
        {"entity": {"tenant": "acme"}, "quotas": {"consumer_byte_rate": 20e6, "producer_byte_rate": 5e6}},
    ]
    assert ok(ks("quota", "list", "--user", "CN=acme-dev", *a)) == \
        "Quota configs for user-principal 'CN=acme-dev' are producer_byte_rate=1000000\n"
    ok(ks("quota", "set", "--tenant", "acme", "--delete", "consumer_byte_rate", *a))
    ok(ks("quota", "set", "--default-client-id", "--delete", "request_percentage", *a))
    assert json.loads(ok(ks("quota", "list", "--tenant", "acme", "--output", "json", *a))) == \
        [{"entity": {"tenant": "acme"}, "quotas": {"producer_byte_rate": 5e6}}]

    # the tenant admin: its own tenant and its quotas, nothing more
    boss = admin(broker, files, "acme-boss")
    assert ok(ks("tenant", "list", *boss)).split() == ["acme"]
    assert ok(ks("quota", "list", *boss)) == "Quota configs for tenant 'acme' are producer_byte_rate=5000000\n"
    refused = ks("tenant", "update", "acme", "--max-partitions", "100000", *boss)
    assert refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr.decode()

    out = ok(ks("tenant", "delete", "acme", *a))
    assert out == "Deleted tenant 'acme'.\n"
    gone = ks("tenant", "describe", "acme", *a)
    assert gone.returncode == 1 and gone.stderr.decode() == \
        "Error: cannot describe tenant 'acme': NOT_FOUND: tenant acme does not exist\n"
    ok(ks("tenant", "delete", "acme", "--if-exists", *a))
    ok(ks("quota", "set", "--user", "CN=acme-dev", "--delete", "producer_byte_rate", *a))
    ok(ks("quota", "set", "--user", "CN=acme-dev", "--client-id", "batch", "--delete-config",
          "consumer_byte_rate,request_percentage", *a))  # kafka-configs' comma form
    assert json.loads(ok(ks("quota", "list", "--output", "json", *a))) == []


BAD_INPUT = [
    # (arguments, exit code, what stderr says)
    (["tenant", "create", "Acme"], 1, "INVALID_ARGUMENT: tenant name 'Acme' must match"),
    (["tenant", "create", "x", "--principal", "alice"], 1, "INVALID_ARGUMENT"),
    (["tenant", "create", "x", "--produce-byte-rate", "10XB"], 2, "'10XB' is not a size"),
    (["tenant", "create", "x", "--max-partitions", "-1"], 2, "--max-partitions"),
    (["tenant", "create", "x", "--max-partitions", "99999999999999999999"], 2, "not in the range 0<=x<="),
    (["tenant", "create", "x", "--max-storage-bytes", "10000000TB"], 2, "more than the largest size"),
    (["tenant", "update", "x", "--max-storage-bytes", "9" * 400], 2, "more than the largest size"),
    (["tenant", "update", "nope", "--max-partitions", "1"], 1, "NOT_FOUND: tenant nope does not exist"),
    (["tenant", "update", "x"], 2, "nothing to update"),
    (["tenant", "update", "x", "--produce-byte-rate", "1MB", "--remove-quota", "producer_byte_rate"], 2,
     "both set and removed"),
    (["tenant", "describe", "no-such"], 1, "NOT_FOUND"),
    (["quota", "set", "--user", "a", "--tenant", "b", "--produce-byte-rate", "1"], 2, "--tenant is not combined"),
    (["quota", "set", "--user", "a", "--default-user", "--produce-byte-rate", "1"], 2, "exclude each other"),
    (["quota", "set", "--user", "a"], 2, "name at least one quota"),
    (["quota", "set", "--produce-byte-rate", "1"], 2, "name the entity"),
    (["quota", "set", "--tenant", "nope", "--produce-byte-rate", "1MB"], 1, "NOT_FOUND: tenant nope does not exist"),
    (["quota", "set", "--user", "a", "--add-config", "bogus=1"], 2, "expected KEY=VALUE"),
    (["quota", "set", "--user", "a", "--add-config", "producer_byte_rate=10000000TB"], 2, "more than the largest size"),
    (["quota", "set", "--user", "a", "--delete", "producer_byte_rate,bogus"], 2, "'bogus' is not one of"),
    (["quota", "set", "--user", "a", "--add-config", "request_percentage=-5"], 1,
     "INVALID_ARGUMENT: alterations[0]: Quota request_percentage must be greater than 0"),
    (["quota", "set", "--user", "", "--produce-byte-rate", "1"], 1, "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize("args, code, message", BAD_INPUT, ids=lambda v: " ".join(v)[:80] if isinstance(v, list) else None)
def test_bad_input_gets_a_clear_error(broker, files, args, code, message):
    proc = ks(*args, *admin(broker, files))
    stderr = proc.stderr.decode()
    assert proc.returncode == code and message in stderr, (proc.returncode, stderr)
    assert "Traceback" not in stderr


def test_connection_problems_get_a_clear_error(broker, files, tmp_path):
    down = ks("tenant", "list", "--admin-url", f"127.0.0.1:{free_port()}", "--command-config", files["admin"])
    assert down.returncode == 1 and "cannot list tenants: UNAVAILABLE" in down.stderr.decode()
    no_cert = tmp_path / "no-cert.properties"
    no_cert.write_text(f"ssl.truststore.location={broker.tls.ca_cert}\n")
    for config, message in ((no_cert, "needs a client certificate"), (tmp_path / "missing", "cannot read")):
        proc = ks("tenant", "list", "--admin-url", broker.admin_target, "--command-config", str(config))
        assert proc.returncode == 1 and message in proc.stderr.decode(), proc.stderr
        assert "Traceback" not in proc.stderr.decode()
