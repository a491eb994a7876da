"""Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, expiry, and group clean-up.

The cache changes only after the commit's record is in `__consumer_offsets`, and only when that
record is newer than the one behind the cached value, so concurrent commits settle in log order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from keystream.broker.errors import ErrorCode
from keystream.broker.groups import formats
from keystream.broker.groups.config import GroupConfig
from keystream.broker.groups.formats import OffsetValue, java_length
from keystream.broker.groups.group import CONSUMER_PROTOCOL_TYPE, CommittedOffset, Group, GroupState
from keystream.broker.groups.membership import Membership
from keystream.broker.groups.rebalance import now_ms, validate_member
from keystream.broker.groups.results import CommitRequestPartition, FetchedOffset, TopicPartition
from keystream.broker.groups.store import GroupLog, offset_write_error
from keystream.broker.groups.tasks import Background

log = logging.getLogger("keystream.groups")

EMPTY = GroupState.EMPTY
DEAD = GroupState.DEAD


def validate_commit(group: Group, generation_id: int, member_id: str, instance_id: str | None) -> ErrorCode | None:
    """Who may commit to an existing group (Kafka's ClassicGroup.validateOffsetCommit)."""
    if group.is_(DEAD):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if generation_id < 0 and group.is_(EMPTY):
        return None  # a simple consumer or the admin client: allowed while nobody is a member
    if generation_id >= 0 or member_id or instance_id is not None:
        error = validate_member(group, member_id, instance_id)
        if error is not None:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
    elif not group.is_(EMPTY):
        return ErrorCode.UNKNOWN_MEMBER_ID
    if group.is_(GroupState.COMPLETING_REBALANCE):
        return ErrorCode.REBALANCE_IN_PROGRESS
    return None


class Offsets:
    """Offset storage and the clean-up that removes empty groups without offsets."""

    def __init__(self, groups: dict[str, Group], config: GroupConfig, store: GroupLog, membership: Membership,
                 background: Background, clock: Callable[[], int] = now_ms):
        self.groups = groups
        self.config = config
        self.store = store
        self.membership = membership
        self.background = background
        self.clock = clock

    # ------------------------------------------------------------ commit

    async def commit(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
                     partitions: list[CommitRequestPartition], *, version: int) -> dict[TopicPartition, ErrorCode]:
        group = self.groups.get(group_id)
        error: ErrorCode | None = None
        if group is None:
            if generation_id < 0:
                group = self.groups[group_id] = Group(group_id, self.clock())
            else:
                # v9+ says the group does not exist; older versions keep Kafka's ILLEGAL_GENERATION.
                error = ErrorCode.GROUP_ID_NOT_FOUND if version >= 9 else ErrorCode.ILLEGAL_GENERATION
        else:
            error = validate_commit(group, generation_id, member_id, instance_id)
        if error is not None:
            return {(p.topic, p.partition): error for p in partitions}
        assert group is not None
        if group.has(member_id):
            self.membership.touch(group, member_id)
        now = self.clock()
        results: dict[TopicPartition, ErrorCode] = {}
        accepted: list[tuple[TopicPartition, OffsetValue]] = []
        limit = self.config.offset_metadata_max_bytes
        for p in partitions:
            metadata = p.metadata if p.metadata is not None else ""
            if java_length(metadata) > limit:
                results[(p.topic, p.partition)] = ErrorCode.OFFSET_METADATA_TOO_LARGE
                continue
            value = OffsetValue(p.offset, p.leader_epoch, metadata,
                                p.commit_timestamp if p.commit_timestamp != -1 else now, p.expire_timestamp)
            accepted.append(((p.topic, p.partition), value))
        if accepted:
            # Append now, while the checks above still hold; apply to the cache once durable, even if
            # the client goes away meanwhile.
            entries = [(formats.offset_key(group_id, t, p), formats.offset_value(v)) for (t, p), v in accepted]
            for tp, _ in accepted:
                group.pending_offset_commits[tp] += 1
            write = self.store.write(group_id, entries, now)
            outcome = await asyncio.shield(self.background.spawn(self._apply(group, accepted, write)))
            for tp, _ in accepted:
                results[tp] = outcome
        return results

    async def _apply(self, group: Group, accepted: list[tuple[TopicPartition, OffsetValue]],
                     write: asyncio.Future) -> ErrorCode:
        try:
            base = await write
        except Exception as exc:  # noqa: BLE001 - mapped to the per-partition error
            log.warning("group %s: offset commit failed: %r", group.group_id, exc)
            return offset_write_error(exc)
        else:
            if not group.is_(DEAD):
                for i, (tp, value) in enumerate(accepted):
                    current = group.offsets.get(tp)
                    if current is None or current.record_offset < base + i:
                        group.offsets[tp] = CommittedOffset(value, base + i)
            return ErrorCode.NONE
        finally:
            for tp, _ in accepted:
                group.pending_offset_commits[tp] -= 1
                if group.pending_offset_commits[tp] <= 0:
                    del group.pending_offset_commits[tp]

    # ------------------------------------------------------------ fetch

    def fetch(self, group_id: str, topics: list[tuple[str, list[int]]] | None,
              require_stable: bool) -> list[tuple[str, list[tuple[int, FetchedOffset]]]]:
        """Offsets per topic in request order; all committed ones when `topics` is None; -1 if none."""
        group = self.groups.get(group_id)
        if group is not None and group.is_(DEAD):
            group = None
        if topics is None:
            if group is None:
                return []
            by_topic: dict[str, list[int]] = {}
            for topic, partition in sorted(group.offsets):
                by_topic.setdefault(topic, []).append(partition)
            topics = list(by_topic.items())
        out = []
        for topic, partitions in topics:
            rows = []
            for partition in partitions:
                rows.append((partition, self._fetch_one(group, (topic, partition), require_stable)))
            out.append((topic, rows))
        return out

    @staticmethod
    def _fetch_one(group: Group | None, tp: TopicPartition, require_stable: bool) -> FetchedOffset:
        if group is None:
            return FetchedOffset()
        if require_stable and group.pending_offset_commits.get(tp):
            return FetchedOffset(error=ErrorCode.UNSTABLE_OFFSET_COMMIT)
        committed = group.offsets.get(tp)
        if committed is None:
            return FetchedOffset()
        v = committed.value
        return FetchedOffset(v.offset, v.leader_epoch, v.metadata)

    # ------------------------------------------------------------ delete

    async def delete(self, group_id: str, partitions: list[TopicPartition]) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """OffsetDelete: refused for topics a non-empty consumer group is subscribed to."""
        group = self.groups.get(group_id)
        if group is None or group.is_(DEAD):
            return ErrorCode.GROUP_ID_NOT_FOUND, {}
        errors: dict[TopicPartition, ErrorCode] = {}
        if group.is_(EMPTY):
            eligible = list(partitions)
        elif group.protocol_type == CONSUMER_PROTOCOL_TYPE:
            eligible = []
            for tp in partitions:
                if group.is_subscribed_to(tp[0]):
                    errors[tp] = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
                else:
                    eligible.append(tp)
        else:
            return ErrorCode.NON_EMPTY_GROUP, {}
        if eligible:
            removed = [tp for tp in dict.fromkeys(eligible) if group.offsets.pop(tp, None) is not None]
            await self.cleanup(group, removed)
            for tp in eligible:
                errors[tp] = ErrorCode.NONE
        return ErrorCode.NONE, errors

    # ------------------------------------------------------------ expiry and clean-up

    def expired_offsets(self, group: Group, now: int) -> list[TopicPartition]:
        """Kafka 2.1+ (KIP-211) expiry: an offset ages from when its group became empty."""
        retention = self.config.offsets_retention_ms
        if group.protocol_type is not None and group.is_(EMPTY):
            subscribed: set[str] = set()

            def base(c: CommittedOffset) -> int:
                return group.state_timestamp if group.state_timestamp >= 0 else c.value.commit_timestamp
        elif (group.protocol_type == CONSUMER_PROTOCOL_TYPE and group.subscribed_topics is not None
              and group.is_(GroupState.STABLE)):
            subscribed = group.subscribed_topics

            def base(c: CommittedOffset) -> int:
                return c.value.commit_timestamp
        elif group.protocol_type is None:
            subscribed = set()

            def base(c: CommittedOffset) -> int:
                return c.value.commit_timestamp
        else:
            return []
        expired = []
        for tp, c in group.offsets.items():
            if tp[0] in subscribed or group.pending_offset_commits.get(tp):
                continue
            if c.value.expire_timestamp >= 0:
                if now >= c.value.expire_timestamp:
                    expired.append(tp)
            elif now - base(c) >= retention:
                expired.append(tp)
        return expired

    async def expire(self, now: int | None = None) -> int:
        """Removes expired offsets and empty groups that have none left; returns offsets removed."""
        now = self.clock() if now is None else now
        removed_total = 0
        writes = []
        for group in list(self.groups.values()):
            if group.is_(DEAD):
                continue
            expired = self.expired_offsets(group, now)
            for tp in expired:
                del group.offsets[tp]
            removed_total += len(expired)
            writes.append(self.cleanup_now(group, expired))
        await settle_all(writes)
        if removed_total:
            log.info("removed %d expired offsets", removed_total)
        return removed_total

    async def cleanup(self, group: Group, removed: list[TopicPartition]) -> None:
        await settle_all([self.cleanup_now(group, removed)])

    def cleanup_now(self, group: Group, removed: list[TopicPartition]) -> asyncio.Future | None:
        """Tombstones removed offsets; an empty group left without offsets dies (Kafka's cleanupGroupMetadata).

        The in-memory change and the append happen now; the returned future settles when durable.
        """
        entries: list[tuple[bytes, bytes | None]] = [
            (formats.offset_key(group.group_id, t, p), None) for t, p in removed
        ]
        if group.is_(EMPTY) and not group.has_offsets():
            group.transition(DEAD, self.clock())
        if group.is_(DEAD):
            if self.groups.get(group.group_id) is group:
                del self.groups[group.group_id]
            self.membership.unload(group, ErrorCode.COORDINATOR_NOT_AVAILABLE)
            if group.generation_id > 0:  # generation 0 never wrote group metadata
                entries.append((formats.group_key(group.group_id), None))
        if not entries:
            return None
        return self.store.write(group.group_id, entries, self.clock())


async def settle_all(writes: list[asyncio.Future | None]) -> None:
    """Waits for tombstone writes; failures are logged (the cache is already updated, as in Kafka)."""
    pending = [w for w in writes if w is not None]
    if not pending:
        return
    for outcome in await asyncio.gather(*pending, return_exceptions=True):
        if isinstance(outcome, BaseException):
            log.warning("cannot write tombstones to __consumer_offsets: %r", outcome)
