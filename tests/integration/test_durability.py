"""Records survive crashes: kill -9 during an acks=-1 produce loop loses no acknowledged record and
moves no offset; a torn tail of the active segment is truncated on start with every earlier
record intact. The client-driven tests (kill -9 during produce, clean restart) run over PLAINTEXT
and over mTLS; the torn-tail tests are about the files on disk and run over PLAINTEXT only."""

from __future__ import annotations

import threading

import pytest

from tests.fixtures.clients import Delivery, Msg, consume_assigned, create_topic, producer, wire
from tests.fixtures.records import Record, build_batch, parse_batches
from tests.fixtures.waiting import Deadline, wait_for
from tests.fixtures.wire import WireClient, unique_name

pytestmark = pytest.mark.keystream_only


def test_kill9_during_acks_all_produce_loses_no_acknowledged_record(listener_broker):
    broker = listener_broker
    topic = unique_name("dur-kill9")
    partitions = 3
    create_topic(broker, topic, partitions)
    d = Delivery()
    p = producer(
        broker,
        **{
            "acks": "all",
            "linger.ms": 1,
            "message.timeout.ms": 4000,
            "retries": 0,
            "socket.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 200,
        },
    )
    killed = threading.Event()

    def killer():
        wait_for(lambda: len(d.acked) >= 3000, 60, message="3000 acknowledged records before the kill")
        broker.kill9()
        killed.set()

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    deadline = Deadline(60)
    i = 0
    # Bounded loop: at most 200k records or 60 s; it ends soon after the kill.
    while i < 200_000 and not deadline.expired() and not killed.is_set():
        try:
            p.produce(topic, value=f"rec-{i}".encode(), key=str(i).encode(), partition=i % partitions, on_delivery=d)
            i += 1
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    t.join(60)
    assert killed.is_set(), "broker was never killed (too few acknowledged records)"
    # Let in-flight deliveries fail (the broker is gone) so every delivery report is final.
    remaining = p.flush(15)
    assert remaining == 0, f"{remaining} delivery reports missing"
    acked = list(d.acked)
    assert len(acked) >= 3000

    broker.start()
    got = consume_assigned(broker, topic, partitions, len(acked), timeout=60)
    at = {(m.partition, m.offset): m for m in got}
    missing = [m for m in acked if (m.partition, m.offset) not in at]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
    moved = [m for m in acked if at[(m.partition, m.offset)].value != m.value]
    assert not moved, f"{len(moved)} acknowledged records changed offset, e.g. {moved[:3]}"
    # The log is still writable at the right place after recovery.
    with wire(broker) as c:
        for part in range(partitions):
            end = c.list_offset(topic, part, -1).offset
            resp = c.produce(topic, part, build_batch([Record(value=b"after")]))
            assert resp.error_code == 0 and resp.base_offset == end


def _produce_singles(c: WireClient, topic: str, partition: int, values: list[bytes]) -> list[int]:
    offsets = []
    for v in values:
        resp = c.produce(topic, partition, build_batch([Record(key=v, value=v * 10)]))
        assert resp.error_code == 0, resp
        offsets.append(resp.base_offset)
    return offsets


@pytest.mark.parametrize("damage", ["cut", "garbage", "cut-mid-header"])
def test_torn_tail_is_truncated_and_earlier_records_intact(broker, damage):
    topic = unique_name("dur-torn")
    with WireClient(broker.address) as c:
        c.create_topic(topic, 1)
        values = [f"rec{i:03d}".encode() for i in range(50)]
        offsets = _produce_singles(c, topic, 0, values)
        assert offsets == list(range(50))
        # Several records in one batch at the end: a torn batch loses all of them together.
        resp = c.produce(topic, 0, build_batch([Record(value=b"last-a"), Record(value=b"last-b")]))
        assert resp.base_offset == 50
    broker.stop()

    log = broker.segment_files(topic, 0)[-1]
    data = log.read_bytes()
    batches = parse_batches(data, decode_records=False)
    assert batches and batches[-1].base_offset == 50, "last batch on disk"
    last = batches[-1]
    last_start = len(data) - len(last.raw)
    if damage == "cut":
        with open(log, "r+b") as f:
            f.truncate(len(data) - 7)
        expected_end = 50
    elif damage == "cut-mid-header":
        with open(log, "r+b") as f:
            f.truncate(last_start + 20)
        expected_end = 50
    else:  # garbage appended after a complete log: the complete batches all stay
        with open(log, "ab") as f:
            f.write(bytes(range(256)) + b"\xff" * 44)
        expected_end = 52
    broker.start()

    with WireClient(broker.address) as c:
        assert c.list_offset(topic, 0, -1).offset == expected_end
        got = consume_assigned(broker.bootstrap, topic, [0], expected_end, extra_wait=0.5)
        assert [m.offset for m in got] == list(range(expected_end))
        assert [m.key for m in got[:50]] == values
        assert [m.value for m in got[:50]] == [v * 10 for v in values]
        # New records go right after the last intact one, and the file holds only valid batches.
        resp = c.produce(topic, 0, build_batch([Record(value=b"new")]))
        assert resp.error_code == 0 and resp.base_offset == expected_end
    on_disk = b"".join(p.read_bytes() for p in broker.segment_files(topic, 0))
    parsed = parse_batches(on_disk, decode_records=False, stop_at_partial=False)
    assert all(b.crc_ok for b in parsed)
    assert [b.base_offset for b in parsed][-2:] == [49 if expected_end == 50 else 50, expected_end]


def test_records_and_topics_survive_clean_restart(listener_broker):
    broker = listener_broker
    topic = unique_name("dur-restart")
    create_topic(broker, topic, 2, {"cleanup.policy": "delete", "retention.ms": 86_400_000})
    d = Delivery()
    p = producer(broker)
    for i in range(200):
        p.produce(topic, value=f"v{i}".encode(), headers=[("i", str(i).encode())], partition=i % 2, on_delivery=d)
    assert p.flush(30) == 0 and not d.errors
    broker.restart()
    got = consume_assigned(broker, topic, 2, 200)
    assert sorted((m.partition, m.offset, m.value) for m in got) == sorted(
        (m.partition, m.offset, m.value) for m in d.acked
    )
    assert all(isinstance(m, Msg) for m in got)
