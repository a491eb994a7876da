"""The rebalance engine under the group APIs: timers, join completion, assignment propagation.

This follows Apache Kafka's GroupCoordinator state machine. Parked JoinGroup/SyncGroup requests are
futures on the member (`join_waiters`, `sync_waiters`) completed when the rebalance moves on; every
timer is an asyncio TimerHandle held by the group or member it belongs to and cancelled when that
member leaves, so a vanished client leaves nothing behind once its session or the rebalance ends.

One departure from Kafka, in the initial join of an Empty group: Kafka's InitialDelayedJoin waits
`group.initial.rebalance.delay.ms`, and if a member joined meanwhile waits another full delay, and so
on up to the rebalance timeout, so two consumers starting together wait two delays (6 s at the 3 s
default). Here the window is counted once from the first join: the join completes when
min(delay, rebalance timeout) has passed since the first member joined, with every member that joined
inside it, and is never extended (Kafka's first wait is the full delay even past the rebalance
timeout; here the timeout caps it). Everything else is Kafka's: the initial join never completes
early (not even when every known or KIP-394 pending member has joined; with a delay of 0 it
completes at once), a member joining after it starts a normal rebalance, and members parked in
SyncGroup get REBALANCE_IN_PROGRESS when one arrives during CompletingRebalance. So with a delay of
0, a member whose first JoinGroup arrives after the others reached Stable is seen by them only at
their next heartbeat, as in Kafka: the broker has no request of theirs to answer before that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from keystream.broker.errors import ErrorCode
from keystream.broker.groups import formats
from keystream.broker.groups.config import GroupConfig
from keystream.broker.groups.group import Group, GroupState, Member, resolve
from keystream.broker.groups.results import JoinResult, SyncResult
from keystream.broker.groups.store import GroupLog, group_write_error
from keystream.broker.groups.tasks import Background

log = logging.getLogger("keystream.groups")

# Kafka's GroupCoordinator.NewMemberJoinTimeoutMs: a new member's parked JoinGroup is dropped after
# this long, since it cannot heartbeat and a disconnect is invisible while it is parked.
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000

EMPTY = GroupState.EMPTY
PREPARING = GroupState.PREPARING_REBALANCE
COMPLETING = GroupState.COMPLETING_REBALANCE
STABLE = GroupState.STABLE
DEAD = GroupState.DEAD


def now_ms() -> int:
    return int(time.time() * 1000)


def validate_member(group: Group, member_id: str, instance_id: str | None) -> ErrorCode | None:
    """Kafka's validateCurrentMember: a static id must map to this member id, which must exist."""
    if instance_id is not None:
        current = group.static_member_id(instance_id)
        if current is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if current != member_id:
            log.info("group %s: member %s with group.instance.id %s is fenced by member %s",
                     group.group_id, member_id, instance_id, current)
            return ErrorCode.FENCED_INSTANCE_ID
    if not group.has(member_id):
        return ErrorCode.UNKNOWN_MEMBER_ID
    return None


class Rebalancer:
    """Rebalance state transitions and timers shared by the group APIs."""

    def __init__(self, groups: dict[str, Group], config: GroupConfig, store: GroupLog, background: Background,
                 clock: Callable[[], int] = now_ms):
        self.groups = groups
        self.config = config
        self.store = store
        self.background = background
        self.clock = clock

    def _join_result(self, group: Group, member: Member, *, with_members: bool,
                     leader: str | None = None, skip: bool = False) -> JoinResult:
        return JoinResult(
            member.member_id, ErrorCode.NONE, group.generation_id, group.protocol_type, group.protocol_name,
            (group.leader_id if leader is None else leader) or "", skip,
            group.member_metadata() if with_members else [],
        )

    # ================================================================ rebalance

    def _maybe_prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, reason)

    def _prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.is_(COMPLETING):
            self._reset_and_propagate_assignment_error(group, ErrorCode.REBALANCE_IN_PROGRESS)
        self._cancel_sync_timer(group)
        was_empty = group.is_(EMPTY)
        timeout = group.rebalance_timeout_ms()
        group.transition(PREPARING, self.clock())
        log.info("group %s: preparing to rebalance (generation %d): %s", group.group_id, group.generation_id, reason)
        if was_empty:
            self._schedule_initial_join(group, min(self.config.initial_rebalance_delay_ms, timeout))
        else:
            self._schedule_join(group, timeout)
            self._try_complete_join(group)

    def _schedule_initial_join(self, group: Group, window_ms: int) -> None:
        """The initial join ends when the window does (see the module docstring), never earlier."""
        self._cancel_join_timer(group)
        group.join_timer_initial = True
        group.join_timer = asyncio.get_running_loop().call_later(window_ms / 1000, self._complete_join, group)

    def _schedule_join(self, group: Group, timeout_ms: int) -> None:
        self._cancel_join_timer(group)
        group.join_timer_initial = False
        group.join_timer = asyncio.get_running_loop().call_later(timeout_ms / 1000, self._complete_join, group)

    def _try_complete_join(self, group: Group) -> None:
        if (group.is_(PREPARING) and group.join_timer is not None and not group.join_timer_initial
                and group.has_all_members_joined()):
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        """Kafka's onCompleteJoin: drop dynamic members that did not rejoin, start the next generation."""
        self._cancel_join_timer(group)
        if not group.is_(PREPARING):
            return
        for member in group.not_yet_rejoined():
            if member.group_instance_id is None:
                log.info("group %s: removing member %s, which did not rejoin", group.group_id, member.member_id)
                self._drop(group, member.member_id)
        if not self._elect_joined_leader(group) and group.members:
            log.error("group %s: no member rejoined; waiting another rebalance timeout", group.group_id)
            self._schedule_join(group, group.rebalance_timeout_ms())
            return
        group.next_generation(self.clock())
        if group.is_(EMPTY):
            log.info("group %s: generation %d is empty", group.group_id, group.generation_id)
            self.background.spawn(self._log_write_failure(group, self._write_group(group, {})))
            return
        log.info("group %s: generation %d with %d members, protocol %s", group.group_id, group.generation_id,
                 len(group.members), group.protocol_name)
        leader_members = group.member_metadata()
        for member in group.members.values():
            leader = group.is_leader(member.member_id)
            result = self._join_result(group, member, with_members=False)
            if leader:
                result.members = leader_members
            resolve(member.join_waiters, result)
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        self._schedule_pending_sync(group)

    def _elect_joined_leader(self, group: Group) -> bool:
        leader = group.members.get(group.leader_id or "")
        if leader is None:
            return False
        if leader.awaiting_join:
            return True
        for member in group.members.values():
            if member.awaiting_join:
                group.leader_id = member.member_id
                return True
        return False

    def _reset_and_propagate_assignment_error(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: Group, error: ErrorCode) -> None:
        ok = error is ErrorCode.NONE
        for member in group.members.values():
            result = SyncResult(error, group.protocol_type if ok else None, group.protocol_name if ok else None,
                                member.assignment)
            if resolve(member.sync_waiters, result):
                self._schedule_heartbeat(group, member, member.session_timeout_ms)

    def _schedule_pending_sync(self, group: Group) -> None:
        self._cancel_sync_timer(group)
        group.sync_timer = asyncio.get_running_loop().call_later(
            group.rebalance_timeout_ms() / 1000, self._pending_sync_expired, group, group.generation_id)

    def _remove_pending_sync(self, group: Group, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            self._cancel_sync_timer(group)

    def _pending_sync_expired(self, group: Group, generation: int) -> None:
        """Members that got a JoinGroup answer but never sent SyncGroup are removed (Kafka 3.1+)."""
        group.sync_timer = None
        if generation != group.generation_id or group.state not in (COMPLETING, STABLE):
            return
        missing = sorted(group.pending_sync)
        if not missing:
            return
        log.info("group %s: removing members that did not sync: %s", group.group_id, missing)
        for member_id in missing:
            self._drop(group, member_id)
        self._maybe_prepare_rebalance(group, "members did not send SyncGroup")

    def _schedule_heartbeat(self, group: Group, member: Member, timeout_ms: int) -> None:
        if member.heartbeat is not None:
            member.heartbeat.cancel()
        member.heartbeat = asyncio.get_running_loop().call_later(
            timeout_ms / 1000, self._heartbeat_expired, group, member)

    def _heartbeat_expired(self, group: Group, member: Member) -> None:
        member.heartbeat = None
        if group.is_(DEAD) or group.members.get(member.member_id) is not member:
            return
        # Members parked in a rebalance are covered by its timeouts, except new ones (see above);
        # their timer is re-armed so that no member is ever left without one.
        if member.is_new or not (member.awaiting_join or member.awaiting_sync):
            log.info("group %s: member %s failed (session timeout), removing it", group.group_id, member.member_id)
            self._remove_member_and_update(group, member, "session timeout")
        else:
            self._schedule_heartbeat(group, member, member.session_timeout_ms)

    def _pending_member_expired(self, group: Group, member_id: str) -> None:
        if group.pending_members.pop(member_id, False) is False:
            return
        log.info("group %s: pending member %s expired", group.group_id, member_id)
        if group.is_(PREPARING):
            self._try_complete_join(group)

    # ================================================================ removal and shutdown

    def _remove_member_and_update(self, group: Group, member: Member, reason: str) -> None:
        resolve(member.join_waiters, JoinResult("", ErrorCode.UNKNOWN_MEMBER_ID))
        self._drop(group, member.member_id)
        if group.state in (STABLE, COMPLETING):
            self._maybe_prepare_rebalance(group, f"removing member {member.member_id}: {reason}")
        elif group.is_(PREPARING):
            self._try_complete_join(group)

    def _drop(self, group: Group, member_id: str) -> None:
        """Forgets a member or pending member id, its timer and any request still parked for it."""
        pending = group.pending_members.pop(member_id, None)
        if pending is not None:
            pending.cancel()
        member = group.remove(member_id)
        if member is None:
            return
        if member.heartbeat is not None:
            member.heartbeat.cancel()
            member.heartbeat = None
        resolve(member.join_waiters, JoinResult("", ErrorCode.UNKNOWN_MEMBER_ID))
        resolve(member.sync_waiters, SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))

    def _cancel_join_timer(self, group: Group) -> None:
        if group.join_timer is not None:
            group.join_timer.cancel()
            group.join_timer = None

    def _cancel_sync_timer(self, group: Group) -> None:
        if group.sync_timer is not None:
            group.sync_timer.cancel()
            group.sync_timer = None

    def unload(self, group: Group, error: ErrorCode = ErrorCode.NOT_COORDINATOR) -> None:
        """Stops every timer of a group and answers its parked requests (shutdown, deletion)."""
        self._cancel_join_timer(group)
        self._cancel_sync_timer(group)
        for handle in group.pending_members.values():
            if handle is not None:
                handle.cancel()
        group.pending_members.clear()
        for member in group.members.values():
            if member.heartbeat is not None:
                member.heartbeat.cancel()
                member.heartbeat = None
            resolve(member.join_waiters, JoinResult(member.member_id, error))
            resolve(member.sync_waiters, SyncResult(error))

    def schedule_loaded(self, group: Group) -> None:
        """Loaded members must heartbeat within their session timeout, as after a coordinator move."""
        for member in group.members.values():
            self._schedule_heartbeat(group, member, member.session_timeout_ms)

    # ================================================================ persistence

    def _write_group(self, group: Group, assignment: dict[str, bytes]) -> asyncio.Future:
        """Appends the group's metadata record now; the future settles once it is durable."""
        value = formats.group_value(group.to_value(assignment))
        return self.store.write(group.group_id, [(formats.group_key(group.group_id), value)], self.clock())

    async def _write_outcome(self, write: asyncio.Future) -> ErrorCode:
        try:
            await write
        except Exception as exc:  # noqa: BLE001 - every failure maps to a Kafka error code
            return group_write_error(exc)
        return ErrorCode.NONE

    async def _log_write_failure(self, group: Group, write: asyncio.Future) -> None:
        error = await self._write_outcome(write)
        if error is not ErrorCode.NONE:
            log.warning("group %s: cannot persist empty group metadata: %s", group.group_id, error.name)
