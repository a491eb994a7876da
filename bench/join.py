"""Time for a fresh two-member consumer group to become stable.

Both members are created and connected first, then subscribe at the same instant; the clock stops
when both hold a non-empty assignment (the topic has two partitions, so a stable group gives one
each). Consumers run at librdkafka defaults, as a user's would.

With `group.initial.rebalance.delay.ms=0` a run takes either a few ms or one heartbeat interval
(~3 s): a member completes join and sync in ~1.5 ms, so when the other's first JoinGroup comes later
than that (librdkafka retries a FindCoordinator cut off by its bootstrap-broker teardown after ~50 ms;
thread start skew of a few ms does it too) the first learns of it at its next heartbeat. A broker
cannot reach a Stable member sooner; a non-zero delay is what makes the join deterministic.
"""

from __future__ import annotations

import threading
import time
import uuid

from confluent_kafka import Consumer

from bench.brokers import Broker
from bench.meter import Meter


def run(broker: Broker, topic: str, timeout: float) -> dict:
    group = f"bench-join-{uuid.uuid4().hex[:8]}"
    lock = threading.Lock()
    assigned: dict[int, list] = {0: [], 1: []}
    stable = threading.Event()
    stop = threading.Event()
    released: list[float] = []  # the instant both members may subscribe
    start = threading.Barrier(3, action=lambda: released.append(time.monotonic()), timeout=30)
    stable_at: list[float] = []
    at_stable: list[int] = []
    failures: list[str] = []

    def member(i: int) -> None:
        def on_assign(_c, parts) -> None:
            with lock:
                assigned[i] = list(parts)
                if all(assigned.values()) and not stable.is_set():
                    stable_at.append(time.monotonic())
                    at_stable.extend(len(assigned[m]) for m in (0, 1))
                    stable.set()

        def on_revoke(_c, _parts) -> None:
            with lock:
                assigned[i] = []

        consumer = Consumer(broker.client_config(**{"group.id": group, "enable.auto.commit": False}))
        try:
            consumer.list_topics(topic=topic, timeout=10)
            start.wait()
            consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
            while not stop.is_set():
                msg = consumer.poll(0.02)
                if msg is not None and msg.error():
                    failures.append(str(msg.error()))
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            start.abort()
        finally:
            consumer.close()

    threads = [threading.Thread(target=member, args=(i,), daemon=True) for i in (0, 1)]
    for t in threads:
        t.start()
    meter = Meter(broker)
    meter.begin()  # before the barrier: reading /proc takes longer than a fast join
    try:
        start.wait()
    except threading.BrokenBarrierError:
        stop.set()
        for t in threads:
            t.join(15)
        return {"complete": False, "records": 0, "bytes": 0, "join_ms": None,
                "first_error": failures[0] if failures else "members failed to start"}
    ok = stable.wait(timeout)
    result = meter.end()
    stop.set()
    for t in threads:
        t.join(15)
    result.update(
        join_ms=(stable_at[0] - released[0]) * 1000 if ok else None, complete=ok and not failures,
        partitions_per_member=at_stable, records=0, bytes=0,
    )
    if failures:
        result["first_error"] = failures[0]
    elif not ok:
        result["first_error"] = f"group not stable after {timeout:.0f}s (assigned: {[len(assigned[m]) for m in (0, 1)]})"
    return result
