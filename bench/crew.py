"""Producer threads that connect first and start together, so the clock sees only the load."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Crew:
    """The start line shared by the multi-producer phases (durable, scale)."""

    def __init__(self, producers: int, errors: list[str], lock: threading.Lock, timeout: float = 60) -> None:
        self.ready = threading.Barrier(producers + 1, timeout=timeout)
        self.producers, self.errors, self.lock = producers, errors, lock

    def connect(self, producer, topic: str, timeout: float) -> bool:
        """In a worker: connect and learn the leaders, then wait for the others; False on failure."""
        try:
            producer.list_topics(topic=topic, timeout=timeout)
            self.ready.wait()
            return True
        except Exception as exc:
            with self.lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.ready.abort()
            return False

    def start(self, worker: Callable[[int], None], release: threading.Event) -> tuple[list[threading.Thread], dict | None]:
        """Starts the workers and waits until all are connected: (threads, None), or (threads, a
        failed sample) after setting `release` so the workers that did connect end."""
        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(self.producers)]
        for t in threads:
            t.start()
        try:
            self.ready.wait()
        except threading.BrokenBarrierError:
            release.set()
            for t in threads:
                t.join(10)
            return threads, {"complete": False, "records": 0, "bytes": 0, "seconds": 0, "broker_cpu_s": 0,
                             "first_error": self.errors[0] if self.errors else "producers failed to connect"}
        return threads, None
