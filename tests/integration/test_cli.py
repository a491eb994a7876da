"""The `keystream` client commands (topic, produce, consume) and `keystream up` against a real broker.

Every command runs as a subprocess (`python -m keystream ...`), so exit codes, stdin and stdout are
the ones a user sees. Records written by the CLI are read back with confluent-kafka and kcat, and
the other way round, so the CLI cannot agree only with itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from keystream.devsetup import write_dev_files
from keystream.properties import load_properties
from tests.fixtures.broker import api_versions_probe, free_port
from tests.fixtures.clients import (
    Delivery,
    consume_assigned,
    create_topic,
    flush,
    kcat,
    kcat_consume,
    producer,
)
from tests.fixtures.waiting import Deadline, wait_for
from tests.fixtures.wire import unique_name

CLI_TIMEOUT = 90


def ks(*args: str, input: bytes | None = None, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """Run `python -m keystream ARGS` to completion and capture its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTREAM_")}
    return subprocess.run([sys.executable, "-m", "keystream", *args], input=input if input is not None else b"",
                          capture_output=True, timeout=timeout, env=env, check=False)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr.decode()}"
    return proc.stdout.decode()


def err(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.decode()


@pytest.fixture(scope="module")
def bs(shared_broker) -> list[str]:
    return ["--bootstrap-server", shared_broker.bootstrap]


def describe(bs: list[str], topic: str) -> str:
    return ok(ks("topic", "describe", "--topic", re.escape(topic), *bs))


def test_create_list_describe_delete(bs):
    topic = unique_name("cli")
    assert ok(ks("topic", "create", "--topic", topic, "--partitions", "3", "--config", "retention.ms=3600000",
                 *bs)) == f"Created topic {topic}.\n"
    assert topic in ok(ks("topic", "list", *bs)).splitlines()
    assert ok(ks("topic", "list", "--topic", re.escape(topic), *bs)) == f"{topic}\n"

    lines = describe(bs, topic).splitlines()
    assert lines[0].startswith(f"Topic: {topic}\tTopicId: ")
    assert "\tPartitionCount: 3\tReplicationFactor: 1\t" in lines[0]
    assert [line.split("\t")[2] for line in lines[1:]] == ["Partition: 0", "Partition: 1", "Partition: 2"]
    for line in lines[1:]:
        assert re.fullmatch(rf"\tTopic: {re.escape(topic)}\tPartition: \d\tLeader: \d+\tReplicas: \d+\tIsr: \d+", line)

    again = ks("topic", "create", "--topic", topic, *bs)
    assert again.returncode == 1 and "TOPIC_ALREADY_EXISTS" in err(again)
    ok(ks("topic", "create", "--topic", topic, "--if-not-exists", *bs))

    assert ok(ks("topic", "delete", "--topic", topic, *bs)) == f"Deleted topic {topic}.\n"
    wait_for(lambda: topic not in ok(ks("topic", "list", *bs)).splitlines(), 20, message=f"{topic} gone")
    gone = ks("topic", "delete", "--topic", topic, *bs)
    assert gone.returncode == 1 and "does not exist" in err(gone)
    ok(ks("topic", "delete", "--topic", topic, "--if-exists", *bs))


@pytest.mark.keystream_only
def test_default_partitions_come_from_the_broker(bs):
    topic = unique_name("cli-default")
    ok(ks("topic", "create", "--topic", topic, *bs))
    assert "\tPartitionCount: 1\t" in describe(bs, topic)


def test_describe_unknown_topic(bs):
    proc = ks("topic", "describe", "--topic", unique_name("missing"), *bs)
    assert proc.returncode == 1 and "does not exist" in err(proc)
    ok(ks("topic", "describe", "--topic", unique_name("missing"), "--if-exists", *bs))


@pytest.mark.keystream_only
def test_describe_shows_only_configs_set_on_the_topic(bs):
    topic = unique_name("cli-cfg")
    ok(ks("topic", "create", "--topic", topic, "--config", "cleanup.policy=compact", *bs))
    head = describe(bs, topic).splitlines()[0]
    assert head.endswith("\tConfigs: cleanup.policy=compact"), head


@pytest.mark.keystream_only
def test_alter_partitions(bs):
    topic = unique_name("cli-alter")
    ok(ks("topic", "create", "--topic", topic, "--partitions", "2", *bs))
    ok(ks("topic", "alter", "--topic", topic, "--partitions", "4", *bs))
    wait_for(lambda: "\tPartitionCount: 4\t" in describe(bs, topic), 20, message="4 partitions")
    shrink = ks("topic", "alter", "--topic", topic, "--partitions", "1", *bs)
    assert shrink.returncode == 1 and "INVALID_PARTITIONS" in err(shrink)


@pytest.mark.keystream_only
def test_alter_configs(bs):
    topic = unique_name("cli-alter-cfg")
    ok(ks("topic", "create", "--topic", topic, *bs))
    out = ok(ks("topic", "alter", "--topic", topic, "--add-config", "retention.ms=1000,cleanup.policy=[compact,delete]",
                *bs))
    assert out == f"Completed updating config for topic {topic}.\n"
    head = describe(bs, topic).splitlines()[0]
    assert "cleanup.policy=compact,delete" in head and "retention.ms=1000" in head
    ok(ks("topic", "alter", "--topic", topic, "--delete-config", "retention.ms", *bs))
    head = describe(bs, topic).splitlines()[0]
    assert "retention.ms" not in head and "cleanup.policy=compact,delete" in head
    bad = ks("topic", "alter", "--topic", topic, "--config", "retention.ms=soon", *bs)
    assert bad.returncode == 1 and "INVALID_CONFIG" in err(bad)


@pytest.mark.keystream_only
@pytest.mark.parametrize(("args", "error"), [
    (["--replication-factor", "3"], "INVALID_REPLICATION_FACTOR"),
    (["--config", "no.such.config=1"], "INVALID_CONFIG"),
])
def test_create_errors_carry_kafka_names(bs, args, error):
    proc = ks("topic", "create", "--topic", unique_name("cli-bad"), *args, *bs)
    assert proc.returncode == 1 and error in err(proc), err(proc)


@pytest.mark.keystream_only
def test_invalid_topic_name(bs):
    proc = ks("topic", "create", "--topic", "bad name!", *bs)
    assert proc.returncode == 1 and "INVALID_TOPIC_EXCEPTION" in err(proc), err(proc)


def test_produce_lines_read_by_confluent_kafka_and_kcat(shared_broker, bs):
    topic = unique_name("cli-produce")
    create_topic(shared_broker.bootstrap, topic)
    lines = b"Hello Kafka\n\nsecond line\r\nno newline at end"
    ok(ks("produce", "--topic", topic, *bs, input=lines))
    got = consume_assigned(shared_broker.bootstrap, topic, 1, 4)
    assert [(m.offset, m.key, m.value) for m in got] == [
        (0, None, b"Hello Kafka"), (1, None, b""), (2, None, b"second line"), (3, None, b"no newline at end"),
    ]
    assert [m.value for m in kcat_consume(shared_broker.bootstrap, topic)] == [m.value for m in got]


def test_produce_keys_and_headers(shared_broker, bs):
    topic = unique_name("cli-keys")
    create_topic(shared_broker.bootstrap, topic)
    lines = "h1:a,h2:é\tuser-1:value:1\nNULL\tNULL:v2\nh:NULL\tk3:NULL\n".encode()
    ok(ks("produce", "--topic", topic, "--property", "parse.key=true", "--property", "key.separator=:",
          "--property", "parse.headers=true", "--property", "null.marker=NULL", *bs, input=lines))
    got = consume_assigned(shared_broker.bootstrap, topic, 1, 3)
    assert [(m.key, m.value, m.headers) for m in got] == [
        (b"user-1", b"value:1", [("h1", b"a"), ("h2", "é".encode())]),
        (None, b"v2", []),
        (b"k3", None, [("h", None)]),
    ]


def test_keyed_records_are_partitioned_like_the_java_client(shared_broker, bs):
    topic = unique_name("cli-murmur")
    create_topic(shared_broker.bootstrap, topic, partitions=3)
    # Partitions the Java client's murmur2 partitioner picks for these keys with 3 partitions.
    keys = {f"key-{i}": None for i in range(6)}
    p = producer(shared_broker.bootstrap, partitioner="murmur2_random")
    report = Delivery()
    for key in keys:
        p.produce(topic, key=key.encode(), value=b"x", on_delivery=report)
    flush(p)
    expected = {m.key.decode(): m.partition for m in report.acked}
    data = "".join(f"{key}\tv\n" for key in keys).encode()
    ok(ks("produce", "--topic", topic, "--property", "parse.key=true", *bs, input=data))
    got = consume_assigned(shared_broker.bootstrap, topic, 3, 12)
    for m in got:
        assert m.partition == expected[m.key.decode()]


def test_consume_prints_like_kafkas_console_consumer(shared_broker, bs):
    topic = unique_name("cli-consume")
    # The fixed 2023 timestamps are past the default 7-day retention: without retention.ms=-1 the
    # broker's next maintenance pass (every 15 s) may delete them before the consumer reads them.
    create_topic(shared_broker.bootstrap, topic, config={"retention.ms": -1})
    p = producer(shared_broker.bootstrap)
    report = Delivery()
    p.produce(topic, key=b"k0", value=b"v0", headers=[("h", b"1")], timestamp=1700000000000, on_delivery=report)
    p.produce(topic, key=None, value=b"v1", timestamp=1700000000001, on_delivery=report)
    flush(p)
    out = ok(ks("consume", "--topic", topic, "--from-beginning", "--max-messages", "2", "--timeout-ms", "30000",
                "--property", "print.key=true", "--property", "print.offset=true", "--property",
                "print.partition=true", "--property", "print.timestamp=true", "--property", "print.headers=true",
                *bs))
    assert out == (
        "CreateTime:1700000000000\tPartition:0\tOffset:0\th:1\tk0\tv0\n"
        "CreateTime:1700000000001\tPartition:0\tOffset:1\tNO_HEADERS\tnull\tv1\n"
    )


def test_produce_then_consume_round_trip_through_the_cli(shared_broker, bs):
    topic = unique_name("cli-roundtrip")
    ok(ks("topic", "create", "--topic", topic, *bs))
    ok(ks("produce", "--topic", topic, *bs, input=b"Hello Kafka\n"))
    proc = ks("consume", "--topic", topic, "--from-beginning", "--max-messages", "1", "--timeout-ms", "30000", *bs)
    assert ok(proc) == "Hello Kafka\n"
    assert "Processed a total of 1 messages" in err(proc)


def test_consume_partition_and_offset(shared_broker, bs):
    topic = unique_name("cli-offset")
    create_topic(shared_broker.bootstrap, topic, partitions=2)
    p = producer(shared_broker.bootstrap)
    for i in range(6):
        p.produce(topic, value=f"m{i}".encode(), partition=i % 2)
    flush(p)
    out = ok(ks("consume", "--topic", topic, "--partition", "0", "--offset", "1", "--max-messages", "2",
                "--timeout-ms", "30000", "--property", "print.offset=true", *bs))
    assert out == "Offset:1\tm2\nOffset:2\tm4\n"
    out = ok(ks("consume", "--topic", topic, "--partition", "1", "--from-beginning", "--timeout-ms", "2000", *bs))
    assert out == "m1\nm3\nm5\n"


def test_consume_timeout_on_empty_topic(shared_broker, bs):
    topic = unique_name("cli-empty")
    create_topic(shared_broker.bootstrap, topic)
    proc = ks("consume", "--topic", topic, "--partition", "0", "--from-beginning", "--timeout-ms", "1000", *bs)
    assert ok(proc) == "" and "Processed a total of 0 messages" in err(proc)


def test_consumer_group_resumes_from_committed_offsets(shared_broker, bs):
    topic = unique_name("cli-group")
    group = unique_name("cli-group")
    create_topic(shared_broker.bootstrap, topic)
    ok(ks("produce", "--topic", topic, *bs, input=b"a\nb\nc\nd\n"))
    common = ("consume", "--topic", topic, "--group", group, "--from-beginning", "--timeout-ms", "60000", *bs)
    assert ok(ks(*common, "--max-messages", "2")) == "a\nb\n"
    assert ok(ks(*common, "--max-messages", "2")) == "c\nd\n"


@pytest.mark.keystream_only
def test_produce_to_missing_topic_fails(bs):
    proc = ks("produce", "--topic", unique_name("cli-nowhere"), *bs, input=b"lost\n")
    assert proc.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in err(proc), err(proc)


def test_bad_input_line_stops_with_its_number(shared_broker, bs):
    topic = unique_name("cli-badline")
    create_topic(shared_broker.bootstrap, topic)
    proc = ks("produce", "--topic", topic, "--property", "parse.key=true", *bs, input=b"k\tv\nno separator\nk\tw\n")
    assert proc.returncode == 1 and "line number 2" in err(proc)
    assert [m.value for m in consume_assigned(shared_broker.bootstrap, topic, 1, 1, extra_wait=0.5)] == [b"v"]


def test_command_config_supplies_bootstrap_servers(shared_broker, tmp_path):
    config = tmp_path / "client.properties"
    config.write_text(f"bootstrap.servers={shared_broker.bootstrap}\nsecurity.protocol=PLAINTEXT\n"
                      "key.serializer=org.apache.kafka.common.serialization.StringSerializer\n")
    topic = unique_name("cli-cc")
    proc = ks("topic", "create", "--topic", topic, "--command-config", str(config))
    ok(proc)
    assert "ignoring Java client property key.serializer" in err(proc)
    assert topic in ok(ks("topic", "list", "--command-config", str(config))).splitlines()


def _dev_context(data_dir: Path) -> ssl.SSLContext:
    """What the generated client.properties describe: trust the dev CA, present the admin certificate."""
    ctx = ssl.create_default_context(cafile=str(data_dir / "ca" / "ca.crt"))
    ctx.load_cert_chain(str(data_dir / "certs" / "admin.crt"), str(data_dir / "certs" / "admin.key"))
    return ctx


def _scram_roundtrip(scram_file: Path, topic: str, value: bytes) -> list[bytes]:
    """What a user does with the SCRAM client file: its settings as they are, a confluent-kafka
    producer, then a consumer in a group (so Group Read is checked too); returns what it read."""
    conf = load_properties(scram_file)
    p = Producer({**conf, "message.timeout.ms": 20000})
    report = Delivery()
    p.produce(topic, value, on_delivery=report)
    flush(p)
    assert report.errors == [], report.errors
    c = Consumer({**conf, "group.id": unique_name("scram-group"), "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        got: list[bytes] = []

        def polled() -> bool:
            m = c.poll(0.5)
            if m is not None:
                assert m.error() is None, m.error()
                got.append(m.value())
            return value in got
        wait_for(polled, 30, message="the SCRAM user's consumer reads its record")
        return got
    finally:
        c.close()


def _registry_answers(url: str, context: ssl.SSLContext, headers: dict[str, str] | None = None):
    """The registry's JSON answer to GET `url` over HTTPS, or None while it does not answer."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), context=context,
                                    timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def _produce_avro(schema_file: Path, client_file: Path, topic: str, schema: str) -> list:
    """What the README shows: SchemaRegistryClient from the written registry client file (prefix
    dropped), AvroSerializer, a producer from client.properties; returns the delivery errors."""
    conf = {k.removeprefix("schema.registry."): v for k, v in load_properties(schema_file).items()}
    serialize = AvroSerializer(SchemaRegistryClient(conf), schema)
    p = Producer({**load_properties(client_file), "message.timeout.ms": 20000})
    report = Delivery()
    p.produce(topic, serialize({"id": 7}, SerializationContext(topic, MessageField.VALUE)), on_delivery=report)
    flush(p)
    return report.errors


def _start_up(tmp_path: Path, data_dir: Path, port: int, sasl_port: int, registry_port: int, log_name: str,
              admin_port: int):
    log = (tmp_path / log_name).open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTREAM_")}
    proc = subprocess.Popen([sys.executable, "-m", "keystream", "up", "--data-dir", str(data_dir), "--port", str(port),
                             "--sasl-port", str(sasl_port), "--registry-port", str(registry_port),
                             "--admin-port", str(admin_port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
    return proc, log


def _stop_up(proc: subprocess.Popen, log) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(Deadline(30).left())
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    finally:
        log.close()


@pytest.mark.keystream_only
def test_up_starts_a_secure_dev_broker_that_the_tools_can_use(tmp_path):
    """`keystream up` serves mTLS and SASL_SSL/SCRAM, no plaintext; its admin config works with kcat -F
    and the console tools, the sample mTLS user connects but gets exactly what ACLs grant, the
    sample SCRAM user's 0600 client file works with confluent-kafka (and keeps its password across
    runs), the schema registry answers on HTTPS and takes schemas from the written client file, the
    broker refuses records a validated topic's schema does not describe, the gRPC admin API takes
    `keystream tenant` with the same admin file, and a second `up` reuses the PKI and finds the
    schemas again."""
    data_dir, port, sasl_port, registry_port = tmp_path / "dev", free_port(), free_port(), free_port()
    admin_port = free_port()
    scram_file = data_dir / "scram-client.properties"
    registry_url = f"https://127.0.0.1:{registry_port}"
    order = '{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}'
    proc, log = _start_up(tmp_path, data_dir, port, sasl_port, registry_port, "up.log", admin_port)
    try:
        wait_for(lambda: proc.poll() is not None or (
            (data_dir / "client.properties").exists()
            and api_versions_probe("127.0.0.1", port, ssl_context=_dev_context(data_dir))),
            30, message="keystream up to answer ApiVersions over mTLS")
        output = Path(log.name).read_text()
        assert proc.poll() is None, output
        assert "no plaintext listener" in output and "kcat -F" in output and "keystream acl add" in output
        assert str(scram_file) in output
        assert not api_versions_probe("127.0.0.1", port, timeout=2), "plaintext must not be served"
        assert not api_versions_probe("127.0.0.1", sasl_port, timeout=2), "plaintext must not be served"
        for key in [*(data_dir / "certs").glob("*.key"), *(data_dir / "certs").glob("*.pem"), data_dir / "ca" / "ca.key"]:
            assert key.stat().st_mode & 0o777 == 0o600, key
        server = load_properties(data_dir / "server.properties")
        assert server["listeners"] == f"SSL://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_port}"
        assert server["ssl.client.auth"] == "required"
        assert server["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert server["super.users"] == "User:CN=admin;User:CN=schema-registry"
        assert server["confluent.schema.registry.url"] == registry_url
        java = load_properties(data_dir / "client-java.properties")
        assert java["ssl.keystore.type"] == "PEM" and java["ssl.truststore.type"] == "PEM"

        # The gRPC admin API, with the admin client file `up` wrote (and the tenant step it prints)
        assert server["admin.listener"] == f"127.0.0.1:{admin_port}"
        assert f"keystream tenant list --admin-url 127.0.0.1:{admin_port} --command-config" in output
        admin = ("--admin-url", f"127.0.0.1:{admin_port}", "--command-config", str(data_dir / "client.properties"))
        ok(ks("tenant", "create", "acme", "--principal", "User:acme-alice", "--max-partitions", "10", *admin))
        assert ok(ks("tenant", "list", *admin)) == "acme\n"

        client = str(data_dir / "client.properties")
        ok(ks("topic", "create", "--topic", "test", "--command-config", client))
        ok(ks("produce", "--topic", "test", "--command-config", client, input=b"Hello Kafka\n"))
        kcat("-F", client, "-P", "-t", "test", "-K", ":", input=b"k1:from kcat\n")
        out = ks("consume", "--topic", "test", "--from-beginning", "--max-messages", "2", "--timeout-ms", "30000",
                 "--command-config", client)
        assert ok(out) == "Hello Kafka\nfrom kcat\n"
        got = kcat("-F", client, "-C", "-t", "test", "-o", "beginning", "-e", "-q", "-f", "%k=%s\n").stdout
        assert got.decode() == "=Hello Kafka\nk1=from kcat\n"

        alice = str(data_dir / "alice.properties")
        # She connects (mTLS) but without Describe cannot even learn that the topic exists.
        assert "test" not in ok(ks("topic", "list", "--command-config", alice)).splitlines()
        refused = ks("produce", "--topic", "test", "--command-config", alice, input=b"not allowed\n")
        assert refused.returncode == 1 and "TOPIC_AUTHORIZATION_FAILED" in err(refused), err(refused)
        ok(ks("acl", "add", "--allow-principal", "User:CN=alice,O=dev", "--consumer", "--topic", "test",
              "--group", "*", "--command-config", client))
        got = wait_for(lambda: kcat("-F", alice, "-C", "-t", "test", "-o", "beginning", "-e", "-q", check=False).stdout,
                       20, message="alice reads test once the ACL is in")
        assert got.decode() == "Hello Kafka\nfrom kcat\n"

        # The SCRAM user: the file appears once the broker has the credential, private, on the SASL port.
        wait_for(lambda: proc.poll() is not None or scram_file.exists(), 30, message="the SCRAM client file")
        assert scram_file.stat().st_mode & 0o777 == 0o600
        scram = load_properties(scram_file)
        password = scram["sasl.password"]
        assert len(password) >= 24 and scram["sasl.username"] == "app"
        assert (scram["bootstrap.servers"], scram["security.protocol"], scram["sasl.mechanism"]) == \
            (f"127.0.0.1:{sasl_port}", "SASL_SSL", "SCRAM-SHA-512")
        assert "app" in ok(ks("user", "list", "--command-config", client))
        refused = ks("produce", "--topic", "test", "--command-config", str(scram_file), input=b"not allowed\n")
        assert refused.returncode == 1 and "TOPIC_AUTHORIZATION_FAILED" in err(refused), err(refused)
        ok(ks("acl", "add", "--allow-principal", "User:app", "--producer", "--consumer", "--topic", "test",
              "--group", "*", "--command-config", client))
        assert _scram_roundtrip(scram_file, "test", b"over SCRAM") == [b"Hello Kafka", b"from kcat", b"over SCRAM"]
        # and the mTLS admin still works next to it
        got = kcat("-F", client, "-C", "-t", "test", "-o", "beginning", "-e", "-q").stdout
        assert got.decode() == "Hello Kafka\nfrom kcat\nover SCRAM\n"

        # The schema registry: HTTPS with the dev CA; the admin certificate is a super user.
        wait_for(lambda: proc.poll() is not None or _registry_answers(registry_url + "/", _dev_context(data_dir)) == {},
                 30, message="the registry to answer on HTTPS")
        assert proc.poll() is None, Path(log.name).read_text()
        assert "keystream schema register" in output and "confluent.value.schema.validation=true" in output
        registry = load_properties(data_dir / "registry.properties")
        assert (registry["listeners"], registry["authentication.method"]) == (registry_url, "BASIC")
        assert registry["admin.url"] == f"127.0.0.1:{admin_port}"  # the registry reads the tenants there
        sr = data_dir / "schema-registry.properties"
        ok(ks("topic", "create", "--topic", "orders", "--config", "confluent.value.schema.validation=true",
              "--command-config", client))
        registered = ok(ks("schema", "register", "--subject", "orders-value", "--schema-file", "-",
                           "--registry-config", str(sr), input=order.encode()))
        assert registered == "Registered subject orders-value version 1, schema id 1.\n"
        refused = ks("produce", "--topic", "orders", "--command-config", client, input=b"not avro\n")
        assert refused.returncode == 1 and "INVALID_RECORD" in err(refused), err(refused)
        assert _produce_avro(sr, data_dir / "client.properties", "orders", order) == []
        # Basic with the SCRAM user: authenticated, and shown only what its ACLs allow (nothing on orders)
        basic = {"Authorization": "Basic " + base64.b64encode(f"app:{password}".encode()).decode()}
        assert _registry_answers(registry_url + "/subjects", ssl.create_default_context(
            cafile=str(data_dir / "ca" / "ca.crt")), basic) == []
    finally:
        code = _stop_up(proc, log)
    assert code == 0, Path(log.name).read_text()
    assert password not in Path(log.name).read_text()

    # Restarted, the SCRAM user keeps its password, so the file clients already have still works.
    proc, log = _start_up(tmp_path, data_dir, port, sasl_port, registry_port, "up2.log", admin_port)
    try:
        wait_for(lambda: proc.poll() is not None or "sample SCRAM user app ready" in Path(log.name).read_text(),
                 30, message="the second `up` to set the SCRAM user again")
        assert load_properties(scram_file)["sasl.password"] == password
        assert _scram_roundtrip(scram_file, "test", b"again")[-1] == b"again"
        # the registry read its schemas back from _schemas
        sr_args = ("--registry-config", str(data_dir / "schema-registry.properties"))
        got = wait_for(lambda: ks("schema", "get", "--subject", "orders-value", "--output", "json", *sr_args).stdout,
                       30, message="the restarted registry to serve orders-value")
        assert json.loads(got)["id"] == 1
    finally:
        code = _stop_up(proc, log)
    assert code == 0 and password not in Path(log.name).read_text(), Path(log.name).read_text()
    ca_before = (data_dir / "ca" / "ca.crt").read_bytes()
    again = write_dev_files(data_dir, port=port, sasl_port=sasl_port)
    assert again.created == () and (data_dir / "ca" / "ca.crt").read_bytes() == ca_before
