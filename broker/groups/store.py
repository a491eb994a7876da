"""`__consumer_offsets`: creating it, replaying it at start-up, and appending coordinator records.

Appends happen synchronously in call order (so the log order is the order in which the coordinator
changed its state); the returned future settles once the record is durable, which means after an
fsync when the topic's flush policy asks for one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from keystream.broker import records
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.groups.config import GroupConfig
from keystream.broker.groups.formats import partition_for

log = logging.getLogger("keystream.groups")

TOPIC = "__consumer_offsets"


@dataclass(slots=True)
class LoadedRecord:
    """One record met while replaying `__consumer_offsets`."""

    key: bytes
    value: bytes | None
    offset: int
    partition: int


def group_write_error(exc: BaseException) -> ErrorCode:
    """Kafka's mapping of a failed group-metadata append to the error the client sees."""
    code = exc.code if isinstance(exc, KafkaError) else ErrorCode.KAFKA_STORAGE_ERROR
    if code in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NOT_ENOUGH_REPLICAS,
                ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if code in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    if code is ErrorCode.REQUEST_TIMED_OUT:
        return ErrorCode.REBALANCE_IN_PROGRESS
    if code in (ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.INVALID_FETCH_SIZE):
        return ErrorCode.UNKNOWN_SERVER_ERROR
    return code


def offset_write_error(exc: BaseException) -> ErrorCode:
    """Kafka's mapping of a failed offset-commit append to the per-partition error."""
    code = exc.code if isinstance(exc, KafkaError) else ErrorCode.KAFKA_STORAGE_ERROR
    if code in (ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.INVALID_FETCH_SIZE):
        return ErrorCode.INVALID_COMMIT_OFFSET_SIZE
    if code is ErrorCode.REQUEST_TIMED_OUT:
        return ErrorCode.REQUEST_TIMED_OUT
    return group_write_error(exc)


class GroupLog:
    """The coordinator's view of `__consumer_offsets` on top of the broker's LogManager."""

    def __init__(self, logs, config: GroupConfig, on_append: Callable[[str, int], None] | None = None):
        self.logs = logs
        self.config = config
        self.on_append = on_append
        self.num_partitions = config.offsets_topic_num_partitions

    async def open(self) -> None:
        """Creates the compacted internal topic if missing; an existing topic keeps its partitions."""
        topic = self.logs.topics.get(TOPIC)
        if topic is None:
            overrides = {
                "cleanup.policy": "compact",
                "segment.bytes": str(self.config.offsets_topic_segment_bytes),
                "compression.type": "producer",
            }
            self.logs.create_topic(TOPIC, self.config.offsets_topic_num_partitions, overrides, internal=True)
            topic = self.logs.topics[TOPIC]
            log.info("created %s with %d partitions", TOPIC, self.config.offsets_topic_num_partitions)
        self.num_partitions = len(topic.partitions)
        if self.num_partitions != self.config.offsets_topic_num_partitions:
            log.warning("%s has %d partitions; offsets.topic.num.partitions=%d is ignored for it",
                        TOPIC, self.num_partitions, self.config.offsets_topic_num_partitions)

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.num_partitions)

    def _log(self, partition: int):
        return self.logs.partition(TOPIC, partition)

    def has_partition(self, topic: str, partition: int) -> bool:
        """Whether a topic partition exists (offsets are only taken for those, as in Kafka)."""
        t = self.logs.topics.get(topic)
        return t is not None and 0 <= partition < len(t.partitions)

    async def replay(self) -> AsyncIterator[LoadedRecord]:
        """Every record of every partition in offset order, yielding to the loop between reads."""
        chunk = max(self.config.offsets_load_buffer_size, records.HEADER_SIZE)
        for partition in range(self.num_partitions):
            plog = self._log(partition)
            offset = plog.log_start_offset
            while offset < plog.log_end_offset:
                result = plog.read(offset, chunk)
                start = offset
                for batch in records.split_batches(result.chunks):
                    h = records.parse_header(batch, 0)
                    offset = max(offset, h.next_offset)
                    if h.is_control:
                        continue
                    for rec in records.iter_records(batch):
                        if rec.key is not None:
                            yield LoadedRecord(rec.key, rec.value, rec.offset, partition)
                if offset == start:  # nothing readable up to the log end (e.g. compacted away)
                    break
                await asyncio.sleep(0)

    def write(self, group_id: str, entries: list[tuple[bytes, bytes | None]], timestamp_ms: int) -> asyncio.Future:
        """Appends one batch to the group's partition now; the future gives its base offset once durable.

        A failed append sets the future's exception (a KafkaError when the log said why).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        try:
            partition = self.partition_for(group_id)
            plog = self._log(partition)
            batch = bytearray(records.build_batch([(k, v, [], timestamp_ms) for k, v in entries],
                                                  compression=self.config.offsets_topic_compression_codec))
            limit = plog.config.max_message_bytes
            if len(batch) > limit:
                raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE,
                                 f"{len(batch)}-byte batch exceeds max.message.bytes {limit} of {TOPIC}")
            result = plog.append(batch, [records.parse_header(batch, 0)], now_ms=timestamp_ms)
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(exc)
            return fut
        if self.on_append is not None:
            self.on_append(TOPIC, partition)
        if plog.flush_due():
            flushing = loop.run_in_executor(None, plog.flush)
            flushing.add_done_callback(lambda f: _settle(fut, f, result.base_offset))
        else:
            fut.set_result(result.base_offset)
        return fut


def _settle(fut: asyncio.Future, flushing: asyncio.Future, base_offset: int) -> None:
    if fut.done():
        return
    if flushing.cancelled():
        fut.cancel()
    elif flushing.exception() is not None:
        fut.set_exception(flushing.exception())
    else:
        fut.set_result(base_offset)
