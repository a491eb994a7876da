"""The `_schemas` topic through librdkafka: one reader thread, an idempotent producer, read-your-writes.

A daemon thread consumes the topic's single partition from the beginning for the life of the
process and hands each batch of records, in offset order, to the event loop, which applies them to
the Store. `write()` produces with acks=all and returns once the reader has applied that offset, so
a caller sees its own write (and everything before it) in the Store. The registry is the only writer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from keystream.client_config import ClientConfigError, to_librdkafka
from keystream.configdef import ConfigError

from . import errors
from .store import decode, encode

log = logging.getLogger(__name__)

PREFIX = "kafkastore."
# kafkastore.* properties that reach the Kafka clients; the others (topic, timeouts...) are the registry's.
CLIENT_PROPS = ("bootstrap.servers", "security.protocol", "ssl.truststore.location", "ssl.keystore.location",
                "ssl.key.password", "ssl.endpoint.identification.algorithm", "sasl.mechanism", "sasl.jaas.config")


class KafkaStoreError(RuntimeError):
    """The topic cannot be created, is misconfigured, or cannot be read to its end in time."""


def _text(value: Any) -> str:
    value = getattr(value, "value", value)  # keystream.configdef.Password
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def client_config(props: Mapping[str, Any]) -> dict[str, str]:
    """librdkafka settings from the registry's `kafkastore.*` properties (Confluent names).

    The PEM keystore (key + chain) becomes ssl.certificate.location and ssl.key.location; the
    JAAS line's username/password become sasl.username/sasl.password. Values are never logged.
    """
    java = {name: _text(props[PREFIX + name]) for name in CLIENT_PROPS if props.get(PREFIX + name) is not None}
    if "SASL" not in java.get("security.protocol", "PLAINTEXT").upper():
        java = {k: v for k, v in java.items() if not k.startswith("sasl.")}
    if not java.get("bootstrap.servers"):
        raise ConfigError("Missing required configuration kafkastore.bootstrap.servers")
    # Confluent accepts `SSL://host:port`; librdkafka wants host:port.
    java["bootstrap.servers"] = ",".join(s.split("://", 1)[-1] for s in java["bootstrap.servers"].split(",") if s)
    try:
        conf, _ = to_librdkafka(java)
    except ClientConfigError as exc:
        raise ConfigError(f"kafkastore.{exc}") from None
    return conf


class KafkaStore:
    """Reads `kafkastore.topic` into `apply(key, value)` on the event loop; writes records to it."""

    def __init__(self, props: Mapping[str, Any], apply: Callable[[dict, dict | None], None]):
        self.topic = str(props.get(PREFIX + "topic") or "_schemas")
        self.timeout = float(props.get(PREFIX + "timeout.ms") or 10000) / 1000
        self.init_timeout = float(props.get(PREFIX + "init.timeout.ms") or 60000) / 1000
        self.replication = int(props.get(PREFIX + "topic.replication.factor") or 1)
        self._conf = client_config(props)
        self._apply = apply
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next = 0  # offset after the last record applied
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._producer: Producer | None = None
        self._reader_error: str | None = None

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Create/check the topic, start reading, and return once the state is read to the end."""
        self._loop = asyncio.get_running_loop()
        await asyncio.wait_for(self._loop.run_in_executor(None, self._prepare_topic), self.init_timeout)
        self._producer = Producer({**self._conf, "acks": "all", "enable.idempotence": True, "linger.ms": 0,
                                   "error_cb": self._client_error})
        consumer = Consumer({**self._conf, "group.id": f"keystream-registry-{uuid.uuid4()}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "fetch.wait.max.ms": 100, "error_cb": self._client_error})
        watermarks = functools.partial(consumer.get_watermark_offsets, TopicPartition(self.topic, 0),
                                       timeout=self.init_timeout)
        _, end = await self._loop.run_in_executor(None, watermarks)  # read to here before serving
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        self._spawn("reader", self._read, consumer)
        self._spawn("producer", self._serve_producer)
        try:
            await asyncio.wait_for(self._reached(end), self.init_timeout)
        except TimeoutError:
            await self.close()
            raise KafkaStoreError(f"could not read topic {self.topic} to offset {end} within "
                                  f"{self.init_timeout:g}s (read {self._next})") from None
        log.info("read %s to offset %d", self.topic, end)

    async def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            await asyncio.get_running_loop().run_in_executor(None, t.join, 10)
        self._threads.clear()
        for _, fut in self._waiters:
            fut.cancel()
        self._waiters.clear()

    def _spawn(self, name: str, target: Callable, *args) -> None:
        t = threading.Thread(target=target, args=args, name=f"kafkastore-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    @staticmethod
    def _client_error(err: KafkaError) -> None:
        log.warning("kafkastore client: %s", err)

    # ---------------------------------------------------------------- topic
    def _prepare_topic(self) -> None:
        """(Thread) Create the topic if missing and check it."""
        admin = AdminClient(self._conf)
        try:
            metadata = admin.list_topics(timeout=self.init_timeout)
        except KafkaException as exc:
            raise KafkaStoreError(f"cannot reach the Kafka store: {exc.args[0].str()}") from None
        if self.topic not in metadata.topics or metadata.topics[self.topic].error is not None:
            self._create_topic(admin)
            metadata = admin.list_topics(self.topic, timeout=self.init_timeout)
        partitions = metadata.topics[self.topic].partitions
        if len(partitions) != 1:
            raise KafkaStoreError(f"topic {self.topic} has {len(partitions)} partitions; the registry needs exactly 1")
        resource = ConfigResource(ConfigResource.Type.TOPIC, self.topic)
        entries = admin.describe_configs([resource])[resource].result(timeout=self.init_timeout)
        policy = entries.get("cleanup.policy")
        if policy is None or "compact" not in policy.value:
            raise KafkaStoreError(f"topic {self.topic} must have cleanup.policy=compact, not {policy and policy.value}")

    def _create_topic(self, admin: AdminClient) -> None:
        new = NewTopic(self.topic, num_partitions=1, replication_factor=self.replication,
                       config={"cleanup.policy": "compact"})
        try:
            admin.create_topics([new])[self.topic].result(timeout=self.init_timeout)
            log.info("created topic %s", self.topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaStoreError(f"cannot create topic {self.topic}: {exc.args[0].str()}") from None

    # ---------------------------------------------------------------- reading
    def _read(self, consumer: Consumer) -> None:
        """(Thread) Consume forever, handing each batch to the loop in order."""
        try:
            while not self._stop.is_set():
                # consume(n, timeout) waits out its whole timeout even when records came (201 ms per
                # registry write, measured); poll returns on the first record, then drain what is there.
                first = consumer.poll(0.2)
                if first is None:
                    continue
                batch = []
                for msg in [first, *consumer.consume(499, timeout=0)]:
                    if msg.error() is not None:
                        log.warning("reading %s: %s", self.topic, msg.error())
                        continue
                    batch.append((msg.offset(), decode(msg.key(), msg.value())))
                if batch:
                    self._loop.call_soon_threadsafe(self._apply_batch, batch)
        except Exception as exc:  # the loop must learn that reads stopped, or writes would hang
            log.exception("kafkastore reader stopped")
            self._loop.call_soon_threadsafe(self._reader_failed, str(exc))
        finally:
            consumer.close()

    def _apply_batch(self, batch: list) -> None:
        for offset, record in batch:
            if record is not None:
                try:
                    self._apply(*record)
                except Exception:  # one bad record must not stop the registry from reading on
                    log.exception("applying %s offset %d", self.topic, offset)
            self._next = offset + 1
        waiting = []
        for target, fut in self._waiters:
            if target <= self._next:
                if not fut.done():
                    fut.set_result(None)
            else:
                waiting.append((target, fut))
        self._waiters = waiting

    def _reader_failed(self, why: str) -> None:
        self._reader_error = why
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(errors.store_error(f"Reading the Kafka store failed: {why}"))
        self._waiters.clear()

    async def _reached(self, offset: int) -> None:
        """Wait until every record before `offset` has been applied."""
        if self._reader_error:
            raise errors.store_error(f"Reading the Kafka store failed: {self._reader_error}")
        if self._next >= offset:
            return
        fut = self._loop.create_future()
        self._waiters.append((offset, fut))
        await fut

    # ---------------------------------------------------------------- writing
    def _serve_producer(self) -> None:
        """(Thread) Serve delivery callbacks."""
        while not self._stop.is_set():
            self._producer.poll(0.1)
        self._producer.flush(5)

    async def write(self, key: dict, value: dict | None) -> int:
        """Produce one record (None value = tombstone); return its offset once applied to the Store."""
        assert self._producer is not None, "start() first"
        delivered = self._loop.create_future()

        def on_delivery(err, msg):
            result = (err, None) if err is not None else (None, msg.offset())
            self._loop.call_soon_threadsafe(_settle, delivered, result)

        k, v = encode(key, value)
        try:
            self._producer.produce(self.topic, value=v, key=k, partition=0, on_delivery=on_delivery)
            offset = await asyncio.wait_for(delivered, self.timeout)
            await asyncio.wait_for(self._reached(offset + 1), self.timeout)
        except (TimeoutError, BufferError):
            raise errors.timeout("Write to the Kafka store timed out while waiting for the write to be applied") from None
        except KafkaException as exc:
            raise errors.store_error(f"Error while writing to the Kafka store: {exc.args[0].str()}") from None
        return offset


def _settle(fut: asyncio.Future, result: tuple) -> None:
    err, offset = result
    if fut.done():
        return
    if err is not None:
        fut.set_exception(KafkaException(err))
    else:
        fut.set_result(offset)
