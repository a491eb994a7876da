"""The classic group APIs: JoinGroup, SyncGroup, Heartbeat and LeaveGroup (Kafka's rules, per state).

The transitions and timers they drive live in `rebalance.Rebalancer`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from keystream.broker.errors import ErrorCode
from keystream.broker.groups.group import Group, Member, resolve
from keystream.broker.groups.rebalance import (
    COMPLETING,
    DEAD,
    EMPTY,
    NEW_MEMBER_JOIN_TIMEOUT_MS,
    PREPARING,
    STABLE,
    Rebalancer,
    validate_member,
)
from keystream.broker.groups.results import JoinResult, LeaveResult, SyncResult

log = logging.getLogger("keystream.groups")


class Membership(Rebalancer):
    """The group APIs over the coordinator's groups."""

    # ================================================================ JoinGroup

    async def join(self, group_id: str, member_id: str, group_instance_id: str | None, *,
                   require_known_member_id: bool, supports_skip_assignment: bool, client_id: str,
                   client_host: str, rebalance_timeout_ms: int, session_timeout_ms: int,
                   protocol_type: str, protocols: list[tuple[str, bytes]]) -> JoinResult:
        c = self.config
        if not c.min_session_timeout_ms <= session_timeout_ms <= c.max_session_timeout_ms:
            return JoinResult(member_id, ErrorCode.INVALID_SESSION_TIMEOUT)
        unknown = member_id == ""
        group = self.groups.get(group_id)
        if group is None:
            if not unknown:
                return JoinResult(member_id, ErrorCode.UNKNOWN_MEMBER_ID)
            group = self.groups[group_id] = Group(group_id, self.clock())
        fut: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        args = (client_id, client_host, rebalance_timeout_ms, session_timeout_ms, protocol_type, protocols)
        if not self._accept_joining_member(group, member_id):
            self._drop(group, member_id)
            fut.set_result(JoinResult("", ErrorCode.GROUP_MAX_SIZE_REACHED))
        elif unknown:
            self._new_member_join(group, fut, group_instance_id, require_known_member_id,
                                  supports_skip_assignment, *args)
        else:
            self._current_member_join(group, fut, member_id, group_instance_id, *args)
        if group.is_(PREPARING):
            self._try_complete_join(group)
        return await fut

    def _accept_joining_member(self, group: Group, member_id: str) -> bool:
        """Kafka's acceptJoiningMember: the group.max.size check, kinder to members already waiting."""
        if group.state in (EMPTY, DEAD):
            return True
        member = group.members.get(member_id)
        if group.is_(PREPARING):
            return (member is not None and member.awaiting_join) or group.num_awaiting_join() < self.config.max_size
        return member is not None or len(group.members) < self.config.max_size

    def _new_member_join(self, group: Group, fut: asyncio.Future, instance_id: str | None,
                         require_known: bool, supports_skip: bool, client_id: str, client_host: str,
                         rebalance_ms: int, session_ms: int, ptype: str, protocols: list) -> None:
        if group.is_(DEAD):
            fut.set_result(JoinResult("", ErrorCode.COORDINATOR_NOT_AVAILABLE))
            return
        if not group.supports_protocols(ptype, {name for name, _ in protocols}):
            fut.set_result(JoinResult("", ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
            return
        new_id = f"{instance_id if instance_id is not None else client_id}-{uuid.uuid4()}"
        if instance_id is not None:
            old_id = group.static_member_id(instance_id)
            if old_id is not None:
                log.info("group %s: static member %s rejoins as %s, replacing %s",
                         group.group_id, instance_id, new_id, old_id)
                self._replace_static_member(group, fut, old_id, new_id, supports_skip, rebalance_ms,
                                            session_ms, protocols)
            else:
                self._add_member_and_rebalance(group, fut, new_id, instance_id, client_id, client_host,
                                               rebalance_ms, session_ms, ptype, protocols)
        elif require_known:
            # KIP-394: hand out the id and make the client come back with it.
            loop = asyncio.get_running_loop()
            group.pending_members[new_id] = loop.call_later(session_ms / 1000, self._pending_member_expired,
                                                            group, new_id)
            fut.set_result(JoinResult(new_id, ErrorCode.MEMBER_ID_REQUIRED))
        else:
            self._add_member_and_rebalance(group, fut, new_id, None, client_id, client_host,
                                           rebalance_ms, session_ms, ptype, protocols)

    def _current_member_join(self, group: Group, fut: asyncio.Future, member_id: str, instance_id: str | None,
                             client_id: str, client_host: str, rebalance_ms: int, session_ms: int,
                             ptype: str, protocols: list) -> None:
        if group.is_(DEAD):
            fut.set_result(JoinResult(member_id, ErrorCode.COORDINATOR_NOT_AVAILABLE))
            return
        if not group.supports_protocols(ptype, {name for name, _ in protocols}):
            fut.set_result(JoinResult(member_id, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
            return
        if member_id in group.pending_members:
            if instance_id is not None:  # pending ids are only handed to dynamic members
                fut.set_result(JoinResult(member_id, ErrorCode.UNKNOWN_MEMBER_ID))
                return
            self._add_member_and_rebalance(group, fut, member_id, None, client_id, client_host,
                                           rebalance_ms, session_ms, ptype, protocols)
            return
        error = validate_member(group, member_id, instance_id)
        if error is not None:
            fut.set_result(JoinResult(member_id, error))
            return
        member = group.members[member_id]
        if group.is_(PREPARING):
            self._update_member_and_rebalance(group, member, fut, rebalance_ms, session_ms, protocols)
        elif group.is_(COMPLETING):
            if member.matches(protocols):
                # A retry of a JoinGroup whose answer was lost: answer with the current generation.
                fut.set_result(self._join_result(group, member, with_members=group.is_leader(member_id)))
            else:
                self._update_member_and_rebalance(group, member, fut, rebalance_ms, session_ms, protocols)
        elif group.is_(STABLE):
            if group.is_leader(member_id) or not member.matches(protocols):
                # A leader's JoinGroup always rebalances: it may have seen metadata changes.
                self._update_member_and_rebalance(group, member, fut, rebalance_ms, session_ms, protocols)
            else:
                fut.set_result(self._join_result(group, member, with_members=False))
        else:
            fut.set_result(JoinResult(member_id, ErrorCode.UNKNOWN_MEMBER_ID))

    def _add_member_and_rebalance(self, group: Group, fut: asyncio.Future, member_id: str,
                                  instance_id: str | None, client_id: str, client_host: str,
                                  rebalance_ms: int, session_ms: int, ptype: str, protocols: list) -> None:
        member = Member(member_id, instance_id, client_id, client_host, rebalance_ms, session_ms, ptype,
                        list(protocols), is_new=True, join_waiters=[fut])
        pending = group.pending_members.pop(member_id, None)
        if pending is not None:
            pending.cancel()
        group.add(member)
        # The member cannot heartbeat while parked: expire it if the join never completes.
        self._schedule_heartbeat(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance(group, f"adding member {member_id}")

    def _update_member_and_rebalance(self, group: Group, member: Member, fut: asyncio.Future,
                                     rebalance_ms: int, session_ms: int, protocols: list) -> None:
        group.update_protocols(member, list(protocols))
        member.rebalance_timeout_ms = rebalance_ms
        member.session_timeout_ms = session_ms
        member.join_waiters.append(fut)
        self._maybe_prepare_rebalance(group, f"member {member.member_id} rejoining")

    def _replace_static_member(self, group: Group, fut: asyncio.Future, old_id: str, new_id: str,
                               supports_skip: bool, rebalance_ms: int, session_ms: int, protocols: list) -> None:
        """KIP-345: a known group.instance.id rejoins with a new member id, fencing the old one."""
        member = group.members[old_id]
        previous_leader = group.leader_id
        resolve(member.join_waiters, JoinResult(old_id, ErrorCode.FENCED_INSTANCE_ID))
        resolve(member.sync_waiters, SyncResult(ErrorCode.FENCED_INSTANCE_ID))
        group.replace_member_id(old_id, new_id)
        self._schedule_heartbeat(group, member, member.session_timeout_ms)
        old = (list(member.protocols), member.rebalance_timeout_ms, member.session_timeout_ms)
        group.update_protocols(member, list(protocols))
        member.rebalance_timeout_ms, member.session_timeout_ms = rebalance_ms, session_ms
        member.join_waiters.append(fut)
        if group.is_(STABLE):
            if group.select_protocol() != group.protocol_name:
                self._maybe_prepare_rebalance(group, f"static member {new_id} changed protocols")
                return
            assignment = {m.member_id: m.assignment for m in group.members.values()}
            write = self._write_group(group, assignment)
            self.background.spawn(self._finish_static_replace(
                group, member, fut, write, old_id, new_id, old, previous_leader, supports_skip))
        elif group.is_(COMPLETING):
            # The leader may be assigning to the old id: start over.
            self._prepare_rebalance(group, f"static member {new_id} rejoined during CompletingRebalance")
        # PreparingRebalance: the member simply waits for the join to complete.

    async def _finish_static_replace(self, group: Group, member: Member, fut: asyncio.Future,
                                     write: asyncio.Future, old_id: str, new_id: str, old: tuple,
                                     previous_leader: str | None, supports_skip: bool) -> None:
        error = await self._write_outcome(write)
        if group.members.get(new_id) is not member or fut not in member.join_waiters:
            return  # a rebalance or removal has taken over this member's parked join
        if error is not ErrorCode.NONE:
            log.warning("group %s: cannot persist static member %s: %s", group.group_id, new_id, error.name)
            member.join_waiters.remove(fut)
            group.update_protocols(member, old[0])
            member.rebalance_timeout_ms, member.session_timeout_ms = old[1], old[2]
            group.replace_member_id(new_id, old_id)
            result = JoinResult("", error, group.generation_id, group.protocol_type, group.protocol_name,
                                previous_leader or "")
            resolve([fut], result)
        elif supports_skip:
            # JoinGroup v9+: the leader learns it leads but must not re-run the assignor.
            is_leader = group.is_leader(new_id)
            resolve(member.join_waiters, self._join_result(group, member, with_members=is_leader, skip=is_leader))
        else:
            # Older clients get the previous leader id, so a rejoining leader does not assign.
            resolve(member.join_waiters, self._join_result(group, member, with_members=False,
                                                           leader=previous_leader or ""))
        self._schedule_heartbeat(group, member, member.session_timeout_ms)

    # ================================================================ SyncGroup

    async def sync(self, group_id: str, generation_id: int, member_id: str, protocol_type: str | None,
                   protocol_name: str | None, instance_id: str | None,
                   assignments: dict[str, bytes]) -> SyncResult:
        group = self.groups.get(group_id)
        if group is None:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        if group.is_(DEAD):
            return SyncResult(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        error = validate_member(group, member_id, instance_id)
        if error is None:
            if generation_id != group.generation_id:
                error = ErrorCode.ILLEGAL_GENERATION
            elif ((protocol_type is not None and protocol_type != group.protocol_type)
                  or (protocol_name is not None and protocol_name != group.protocol_name)):
                error = ErrorCode.INCONSISTENT_GROUP_PROTOCOL  # SyncGroup v5+ (KIP-559)
        if error is not None:
            return SyncResult(error)
        if group.is_(EMPTY):
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        if group.is_(PREPARING):
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        member = group.members[member_id]
        self._remove_pending_sync(group, member_id)
        if group.is_(STABLE):
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
            return SyncResult(ErrorCode.NONE, group.protocol_type, group.protocol_name, member.assignment)
        fut: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        member.sync_waiters.append(fut)
        if group.is_leader(member_id):
            log.info("group %s: assignment received from leader %s for generation %d",
                     group.group_id, member_id, group.generation_id)
            full = {mid: bytes(assignments.get(mid, b"")) for mid in group.members}
            write = self._write_group(group, full)
            self.background.spawn(self._finish_sync(group, group.generation_id, full, write))
        return await fut

    async def _finish_sync(self, group: Group, generation: int, assignment: dict[str, bytes],
                           write: asyncio.Future) -> None:
        error = await self._write_outcome(write)
        if not group.is_(COMPLETING) or group.generation_id != generation:
            return
        if error is not ErrorCode.NONE:
            log.warning("group %s: cannot persist the assignment: %s", group.group_id, error.name)
            self._reset_and_propagate_assignment_error(group, error)
            self._maybe_prepare_rebalance(group, "error storing the assignment")
            return
        for member in group.members.values():
            member.assignment = assignment.get(member.member_id, b"")
        self._propagate_assignment(group, ErrorCode.NONE)
        group.transition(STABLE, self.clock())

    # ================================================================ Heartbeat

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None) -> ErrorCode:
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_(DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = validate_member(group, member_id, instance_id)
        if error is not None:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.is_(EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        member = group.members[member_id]
        self._schedule_heartbeat(group, member, member.session_timeout_ms)
        if group.is_(PREPARING):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def touch(self, group: Group, member_id: str) -> None:
        """An accepted offset commit counts as a heartbeat (as in Kafka)."""
        member = group.members.get(member_id)
        if member is not None:
            self._schedule_heartbeat(group, member, member.session_timeout_ms)

    # ================================================================ LeaveGroup

    def leave(self, group_id: str, leaving: list[tuple[str, str | None]]) -> LeaveResult:
        group = self.groups.get(group_id)
        if group is None:
            return LeaveResult(ErrorCode.NONE, [(m, i, ErrorCode.UNKNOWN_MEMBER_ID) for m, i in leaving])
        if group.is_(DEAD):
            return LeaveResult(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        out: list[tuple[str, str | None, ErrorCode]] = []
        for member_id, instance_id in leaving:
            out.append((member_id, instance_id, self._leave_one(group, member_id, instance_id)))
        return LeaveResult(ErrorCode.NONE, out)

    def _leave_one(self, group: Group, member_id: str, instance_id: str | None) -> ErrorCode:
        if member_id == "":
            # Administrative removal by group.instance.id (KIP-345).
            current = group.static_member_id(instance_id)
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            self._remove_member_and_update(group, group.members[current], "LeaveGroup")
            return ErrorCode.NONE
        if member_id in group.pending_members:
            self._drop(group, member_id)
            if group.is_(PREPARING):
                self._try_complete_join(group)
            return ErrorCode.NONE
        error = validate_member(group, member_id, instance_id)
        if error is not None:
            return error
        log.info("group %s: member %s left", group.group_id, member_id)
        self._remove_member_and_update(group, group.members[member_id], "LeaveGroup")
        return ErrorCode.NONE
