"""Debian 12's kcat (librdkafka 2.0.2) works as shipped: metadata listing, produce, consume,
offset queries and a balanced-consumer group. It is strict about the ApiVersions v3 response
framing, so this also guards that. Each test runs over PLAINTEXT and over mTLS."""

from __future__ import annotations

import json

from tests.fixtures.clients import KCAT, create_topic, kcat, kcat_args, kcat_consume
from tests.fixtures.wire import unique_name


def test_kcat_is_installed():
    assert KCAT is not None, "kcat is not installed: .ci/run and `make test` install it (apt-get install kcat)"


def test_kcat_metadata_listing(shared_listener_broker):
    broker = shared_listener_broker
    topic = unique_name("kcat-meta")
    create_topic(broker, topic, 3)
    out = kcat(*kcat_args(broker), "-L", "-J").stdout
    meta = json.loads(out)
    brokers = {(br["id"], br["name"]) for br in meta["brokers"]}
    assert (1, broker.bootstrap) in brokers, brokers
    topics = {t["topic"]: t for t in meta["topics"]}
    assert topic in topics
    parts = topics[topic]["partitions"]
    assert sorted(p["partition"] for p in parts) == [0, 1, 2]
    assert all(p["leader"] == 1 and p["replicas"] == [{"id": 1}] for p in parts), parts
    # The plain text listing works too.
    text = kcat(*kcat_args(broker), "-L", "-t", topic).stdout.decode()
    assert f'topic "{topic}" with 3 partitions' in text


def test_kcat_produce_consume_and_offsets(shared_listener_broker):
    b = shared_listener_broker
    topic = unique_name("kcat-pc")
    create_topic(b, topic, 1)
    lines = [f"line {i}" for i in range(100)]
    kcat(*kcat_args(b), "-P", "-t", topic, "-p", "0", input=("\n".join(lines) + "\n").encode())
    got = kcat_consume(b, topic)
    assert [m.value.decode() for m in got] == lines
    assert [m.offset for m in got] == list(range(100))
    # Consume the last 5 with a relative offset and a format string.
    tail = kcat(*kcat_args(b), "-C", "-t", topic, "-p", "0", "-o", "-5", "-e", "-q", "-f", "%o:%s\\n").stdout.decode()
    assert tail.splitlines() == [f"{i}:line {i}" for i in range(95, 100)]
    # Offset query by timestamp (ListOffsets): a timestamp before everything gives offset 0.
    q = kcat(*kcat_args(b), "-Q", "-t", f"{topic}:0:1000").stdout.decode()
    assert "offset 0" in q, q


def test_kcat_balanced_consumer_group(shared_listener_broker):
    b = shared_listener_broker
    topic = unique_name("kcat-grp")
    group = unique_name("kcat-group")
    create_topic(b, topic, 2)
    for p in (0, 1):
        kcat(*kcat_args(b), "-P", "-t", topic, "-p", str(p), input="".join(f"p{p}-{i}\n" for i in range(10)).encode())
    out = kcat(*kcat_args(b), "-G", group, "-o", "beginning", "-e", "-q", "-f", "%p %s\\n", topic, timeout=30).stdout.decode()
    got = sorted(out.splitlines())
    assert got == sorted(f"{p} p{p}-{i}" for p in (0, 1) for i in range(10))
