"""GroupCoordinator: the one object the broker holds for consumer groups and committed offsets.

It owns the lifecycle (create and replay `__consumer_offsets`, expire offsets, answer parked
requests at shutdown), Kafka's per-request coordinator checks (INVALID_GROUP_ID, COORDINATOR_NOT_
AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS), and the group-level admin APIs; the rebalance protocol
lives in `membership`, offsets in `offsets`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from keystream.broker.errors import ErrorCode
from keystream.broker.groups import formats
from keystream.broker.groups.config import GroupConfig
from keystream.broker.groups.group import CommittedOffset, Group, GroupState
from keystream.broker.groups.membership import Membership
from keystream.broker.groups.offsets import Offsets, settle_all
from keystream.broker.groups.rebalance import now_ms
from keystream.broker.groups.results import (
    CommitRequestPartition,
    FetchedOffset,
    GroupOverview,
    GroupSummary,
    JoinResult,
    LeaveResult,
    MemberSummary,
    SyncResult,
    TopicPartition,
)
from keystream.broker.groups.store import TOPIC, GroupLog
from keystream.broker.groups.tasks import Background

log = logging.getLogger("keystream.groups")


class _Phase(enum.Enum):
    STOPPED = "stopped"
    LOADING = "loading"
    ACTIVE = "active"


# APIs that accept an empty group id (Kafka's isValidGroupId): offsets and admin views.
_EMPTY_ID_OK = frozenset({"offset_commit", "offset_fetch", "describe_groups", "delete_groups"})


class GroupCoordinator:
    """Kafka's classic group coordinator for this broker (it leads every `__consumer_offsets` partition)."""

    def __init__(self, logs: Any, config: Mapping[str, Any] | None = None, *,
                 clock: Callable[[], int] = now_ms):
        self.config = GroupConfig.from_mapping(config)
        self.groups: dict[str, Group] = {}
        self.store = GroupLog(logs, self.config)
        self.background = Background()
        self.clock = clock
        self.membership = Membership(self.groups, self.config, self.store, self.background, clock)
        self.offsets = Offsets(self.groups, self.config, self.store, self.membership, self.background, clock)
        self._phase = _Phase.STOPPED
        self._expiry: asyncio.Task | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def on_append(self) -> Callable[[str, int], None] | None:
        """Called with (topic, partition) after each append, to wake fetches parked on the topic."""
        return self.store.on_append

    @on_append.setter
    def on_append(self, fn: Callable[[str, int], None] | None) -> None:
        self.store.on_append = fn

    @property
    def active(self) -> bool:
        """Loaded and serving requests."""
        return self._phase is _Phase.ACTIVE

    @property
    def started(self) -> bool:
        """Serving or loading: FindCoordinator names this broker (requests may get LOAD_IN_PROGRESS)."""
        return self._phase is not _Phase.STOPPED

    @property
    def topic(self) -> str:
        return TOPIC

    async def start(self) -> None:
        """Creates `__consumer_offsets` if needed and rebuilds groups and offsets from it."""
        if self._phase is not _Phase.STOPPED:
            return
        self._phase = _Phase.LOADING
        try:
            await self.store.open()
            await self._load()
        except BaseException:
            self._phase = _Phase.STOPPED
            raise
        self._phase = _Phase.ACTIVE
        self._expiry = asyncio.get_running_loop().create_task(self._expire_periodically())

    async def stop(self) -> None:
        """Answers parked requests with NOT_COORDINATOR (clients rediscover us), stops every timer."""
        self._phase = _Phase.STOPPED
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)
            self._expiry = None
        for group in self.groups.values():
            self.membership.unload(group)
        await self.background.close()
        self.groups.clear()

    async def _load(self) -> None:
        offsets: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        metadata: dict[str, formats.GroupValue | None] = {}
        count = 0
        async for rec in self.store.replay():
            count += 1
            try:
                kind, group_id, topic, partition = formats.parse_key(rec.key)
                if kind == "offset":
                    tp = (topic, partition)
                    if rec.value is None:
                        offsets.get(group_id, {}).pop(tp, None)
                    else:
                        value = formats.parse_offset_value(rec.value)
                        offsets.setdefault(group_id, {})[tp] = CommittedOffset(value, rec.offset)
                else:
                    metadata[group_id] = None if rec.value is None else formats.parse_group_value(rec.value)
            except formats.FormatError as exc:
                log.warning("%s-%d offset %d: skipping record: %s", TOPIC, rec.partition, rec.offset, exc)
        now = self.clock()
        for group_id in {*offsets, *metadata}:
            value = metadata.get(group_id)
            group_offsets = offsets.get(group_id) or {}
            if value is not None:
                group = Group.from_value(group_id, value)
            elif group_offsets:
                group = Group(group_id, now)  # offsets only: a simple (standalone) group
            else:
                continue
            group.offsets = group_offsets
            self.groups[group_id] = group
            self.membership.schedule_loaded(group)
        log.info("loaded %d groups from %d records of %s", len(self.groups), count, TOPIC)

    async def _expire_periodically(self) -> None:
        interval = self.config.offsets_retention_check_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.offsets.expire()
            except Exception:
                log.exception("offset expiration failed")

    def has_partition(self, topic: str, partition: int) -> bool:
        """Whether this broker has the topic partition (commits are only taken for those)."""
        return self.store.has_partition(topic, partition)

    def partition_for(self, group_id: str) -> int:
        """The `__consumer_offsets` partition holding this group's records."""
        return self.store.partition_for(group_id)

    def _status(self, group_id: str, api: str) -> ErrorCode | None:
        if not group_id and api not in _EMPTY_ID_OK:
            return ErrorCode.INVALID_GROUP_ID
        if self._phase is _Phase.STOPPED:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if self._phase is _Phase.LOADING:
            return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        return None

    # ------------------------------------------------------------ membership

    async def join_group(self, group_id: str, member_id: str, group_instance_id: str | None = None, *,
                         protocol_type: str, protocols: list[tuple[str, bytes]], session_timeout_ms: int,
                         rebalance_timeout_ms: int, client_id: str = "", client_host: str = "",
                         require_known_member_id: bool = True,
                         supports_skip_assignment: bool = False) -> JoinResult:
        """JoinGroup; returns once the rebalance this request takes part in completes (or fails)."""
        error = self._status(group_id, "join_group")
        if error is not None:
            return JoinResult(member_id, error)
        return await self.membership.join(
            group_id, member_id, group_instance_id, require_known_member_id=require_known_member_id,
            supports_skip_assignment=supports_skip_assignment, client_id=client_id, client_host=client_host,
            rebalance_timeout_ms=rebalance_timeout_ms, session_timeout_ms=session_timeout_ms,
            protocol_type=protocol_type, protocols=protocols)

    async def sync_group(self, group_id: str, generation_id: int, member_id: str,
                         group_instance_id: str | None = None, *, protocol_type: str | None = None,
                         protocol_name: str | None = None,
                         assignments: Mapping[str, bytes] | None = None) -> SyncResult:
        """SyncGroup; a follower waits here for the leader's assignment."""
        error = self._status(group_id, "sync_group")
        if error is ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
            error = ErrorCode.REBALANCE_IN_PROGRESS  # older clients do not expect LOAD_IN_PROGRESS here
        if error is not None:
            return SyncResult(error)
        return await self.membership.sync(group_id, generation_id, member_id, protocol_type, protocol_name,
                                          group_instance_id, dict(assignments or {}))

    def heartbeat(self, group_id: str, generation_id: int, member_id: str,
                  group_instance_id: str | None = None) -> ErrorCode:
        error = self._status(group_id, "heartbeat")
        if error is ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
            return ErrorCode.NONE  # Kafka answers blindly while loading
        if error is not None:
            return error
        return self.membership.heartbeat(group_id, generation_id, member_id, group_instance_id)

    def leave_group(self, group_id: str, members: Iterable[tuple[str, str | None]]) -> LeaveResult:
        """LeaveGroup for (member id, group.instance.id) pairs; an empty member id removes by instance id."""
        error = self._status(group_id, "leave_group")
        if error is not None:
            return LeaveResult(error)
        return self.membership.leave(group_id, list(members))

    # ------------------------------------------------------------ offsets

    async def commit_offsets(self, group_id: str, generation_id: int, member_id: str,
                             group_instance_id: str | None, partitions: list[CommitRequestPartition], *,
                             version: int = 8) -> dict[TopicPartition, ErrorCode]:
        """OffsetCommit; returns after the commit record is appended (and flushed, if due)."""
        error = self._status(group_id, "offset_commit")
        if error is not None:
            return {(p.topic, p.partition): error for p in partitions}
        return await self.offsets.commit(group_id, generation_id, member_id, group_instance_id, partitions,
                                         version=version)

    def fetch_offsets(self, group_id: str, topics: list[tuple[str, list[int]]] | None,
                      require_stable: bool = False
                      ) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, FetchedOffset]]]]]:
        """OffsetFetch for one group: (group error, offsets per topic); topics=None means all."""
        error = self._status(group_id, "offset_fetch")
        if error is not None:
            return error, []
        return ErrorCode.NONE, self.offsets.fetch(group_id, topics, require_stable)

    async def delete_offsets(self, group_id: str, partitions: list[TopicPartition]
                             ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        error = self._status(group_id, "offset_delete")
        if error is not None:
            return error, {}
        return await self.offsets.delete(group_id, partitions)

    async def expire_offsets(self, now: int | None = None) -> int:
        """One pass of offset expiry (the periodic task calls this); returns offsets removed."""
        return await self.offsets.expire(now)

    # ------------------------------------------------------------ admin

    def list_groups(self, states: Iterable[str] = (), types: Iterable[str] = ()) -> tuple[ErrorCode, list[GroupOverview]]:
        """ListGroups; empty filters match everything, names compare case-insensitively."""
        if self._phase is _Phase.STOPPED:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        error = ErrorCode.COORDINATOR_LOAD_IN_PROGRESS if self._phase is _Phase.LOADING else ErrorCode.NONE
        wanted_states = {s.lower() for s in states}
        wanted_types = {t.lower() for t in types}
        out = []
        for group in self.groups.values():
            if group.is_(GroupState.DEAD):
                continue
            if wanted_states and group.state.value.lower() not in wanted_states:
                continue
            if wanted_types and "classic" not in wanted_types:
                continue
            out.append(GroupOverview(group.group_id, group.protocol_type or "", group.state.value))
        return error, out

    def describe_group(self, group_id: str) -> GroupSummary:
        error = self._status(group_id, "describe_groups")
        if error is not None:
            return GroupSummary(group_id, error)
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return GroupSummary(group_id, state=GroupState.DEAD.value)
        stable = group.is_(GroupState.STABLE) and group.protocol_name is not None
        members = []
        for m in group.members.values():
            meta = m.metadata(group.protocol_name) if stable else b""
            members.append(MemberSummary(m.member_id, m.group_instance_id, m.client_id, m.client_host, meta,
                                         m.assignment if stable else b""))
        return GroupSummary(group_id, ErrorCode.NONE, group.state.value, group.protocol_type or "",
                            group.protocol_name if stable else "", members)

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        """DeleteGroups: only empty groups go; their offsets and metadata get tombstones."""
        results: dict[str, ErrorCode] = {}
        doomed: list[Group] = []
        for group_id in dict.fromkeys(group_ids):
            error = self._status(group_id, "delete_groups")
            group = self.groups.get(group_id)
            if error is not None:
                results[group_id] = error
            elif group is None or group.is_(GroupState.DEAD):
                results[group_id] = ErrorCode.GROUP_ID_NOT_FOUND
            elif group.is_(GroupState.EMPTY):
                group.transition(GroupState.DEAD, self.clock())
                doomed.append(group)
                results[group_id] = ErrorCode.NONE
            else:
                results[group_id] = ErrorCode.NON_EMPTY_GROUP
        writes = []
        for group in doomed:
            removed = list(group.offsets)
            group.offsets.clear()
            writes.append(self.offsets.cleanup_now(group, removed))
            log.info("group %s deleted with %d offsets", group.group_id, len(removed))
        await settle_all(writes)
        return results
