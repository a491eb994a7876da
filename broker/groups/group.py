"""In-memory model of a classic group: members, static-member index, protocol votes and offsets.

Pure bookkeeping with no timers or I/O, so the rules (who may join, which protocol wins, what a
member's metadata is) can be read and tested on their own. The coordinator drives the state machine.
"""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from dataclasses import dataclass, field

from keystream.broker.groups.formats import GroupValue, MemberValue, OffsetValue, subscription_topics

CONSUMER_PROTOCOL_TYPE = "consumer"


class GroupState(enum.Enum):
    """Kafka's classic group states; the value is the name Kafka reports."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS = {
    GroupState.EMPTY: {GroupState.PREPARING_REBALANCE},
    GroupState.PREPARING_REBALANCE: {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY},
    GroupState.COMPLETING_REBALANCE: {GroupState.PREPARING_REBALANCE},
    GroupState.STABLE: {GroupState.COMPLETING_REBALANCE},
    GroupState.DEAD: set(GroupState) - {GroupState.DEAD},
}


@dataclass(eq=False)
class Member:
    """A group member; `join_waiters`/`sync_waiters` are the parked requests' futures."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    is_new: bool = False
    join_waiters: list[asyncio.Future] = field(default_factory=list)
    sync_waiters: list[asyncio.Future] = field(default_factory=list)
    heartbeat: asyncio.TimerHandle | None = None

    @property
    def awaiting_join(self) -> bool:
        return bool(self.join_waiters)

    @property
    def awaiting_sync(self) -> bool:
        return bool(self.sync_waiters)

    def protocol_names(self) -> set[str]:
        return {name for name, _ in self.protocols}

    def metadata(self, protocol: str) -> bytes:
        for name, meta in self.protocols:
            if name == protocol:
                return meta
        raise KeyError(protocol)

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        """Same protocols in the same order with the same metadata (Kafka's MemberMetadata.matches)."""
        return len(protocols) == len(self.protocols) and all(
            a == b[0] and bytes(m) == bytes(b[1]) for (a, m), b in zip(protocols, self.protocols, strict=True)
        )

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError("member supports none of the candidate protocols")


def resolve(waiters: list[asyncio.Future], result: object) -> bool:
    """Completes every still-pending future with `result`; True if there were any."""
    had = bool(waiters)
    for fut in waiters:
        if not fut.done():
            fut.set_result(result)
    waiters.clear()
    return had


@dataclass(slots=True)
class CommittedOffset:
    """An offset in the cache plus the `__consumer_offsets` offset of the record that holds it."""

    value: OffsetValue
    record_offset: int = -1


class Group:
    """One group's membership and offsets; `state` moves only through `transition`."""

    def __init__(self, group_id: str, now_ms: int, state: GroupState = GroupState.EMPTY):
        self.group_id = group_id
        self.state = state
        self.state_timestamp = now_ms
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}  # group.instance.id -> member id
        self.pending_members: dict[str, asyncio.TimerHandle | None] = {}  # KIP-394 ids not yet joined
        self.pending_sync: set[str] = set()
        self.protocol_counts: Counter[str] = Counter()
        self.subscribed_topics: set[str] | None = None
        self.join_timer: asyncio.TimerHandle | None = None
        self.join_timer_initial = False  # the initial join's window: it never completes early
        self.sync_timer: asyncio.TimerHandle | None = None
        self.offsets: dict[tuple[str, int], CommittedOffset] = {}
        self.pending_offset_commits: Counter[tuple[str, int]] = Counter()

    # ------------------------------------------------------------ state

    def is_(self, state: GroupState) -> bool:
        return self.state is state

    def transition(self, state: GroupState, now_ms: int) -> None:
        if self.state not in _VALID_PREVIOUS[state]:
            raise RuntimeError(f"group {self.group_id}: illegal transition {self.state.value} -> {state.value}")
        self.state = state
        self.state_timestamp = now_ms

    def can_rebalance(self) -> bool:
        return self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY)

    # ------------------------------------------------------------ members

    def has(self, member_id: str) -> bool:
        return member_id in self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def static_member_id(self, instance_id: str | None) -> str | None:
        return None if instance_id is None else self.static_members.get(instance_id)

    def num_awaiting_join(self) -> int:
        return sum(1 for m in self.members.values() if m.awaiting_join)

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.num_awaiting_join() and not self.pending_members

    def not_yet_rejoined(self) -> list[Member]:
        return [m for m in self.members.values() if not m.awaiting_join]

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def add(self, member: Member) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.protocol_counts.update(member.protocol_names())

    def remove(self, member_id: str) -> Member | None:
        """Forgets a member; its timers and waiters are the caller's business."""
        member = self.members.pop(member_id, None)
        if member is not None:
            self.protocol_counts.subtract(member.protocol_names())
            self.protocol_counts += Counter()  # drop zero counts
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_sync.discard(member_id)
        return member

    def update_protocols(self, member: Member, protocols: list[tuple[str, bytes]]) -> None:
        self.protocol_counts.subtract(member.protocol_names())
        member.protocols = protocols
        self.protocol_counts.update(member.protocol_names())
        self.protocol_counts += Counter()

    def replace_member_id(self, old_id: str, new_id: str) -> Member:
        """Renames a static member (KIP-345), keeping its assignment and place."""
        member = self.members.pop(old_id)
        member.member_id = new_id
        self.members[new_id] = member
        if self.leader_id == old_id:
            self.leader_id = new_id
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        return member

    # ------------------------------------------------------------ protocols

    def supports_protocols(self, protocol_type: str, names: set[str]) -> bool:
        """Whether a member with these protocols may join (Kafka's GroupMetadata.supportsProtocols)."""
        if self.is_(GroupState.EMPTY):
            return bool(protocol_type) and bool(names)
        n = len(self.members)
        return self.protocol_type == protocol_type and any(self.protocol_counts[p] == n for p in names)

    def candidate_protocols(self) -> set[str]:
        n = len(self.members)
        return {p for p, c in self.protocol_counts.items() if c == n}

    def select_protocol(self) -> str:
        """Every member votes for its preferred candidate; most votes wins (ties: leader's preference)."""
        candidates = self.candidate_protocols()
        votes = Counter(m.vote(candidates) for m in self.members.values())
        best = max(votes.values())
        winners = {p for p, c in votes.items() if c == best}
        leader = self.members.get(self.leader_id or "")
        order = leader.protocols if leader is not None else next(iter(self.members.values())).protocols
        for name, _ in order:
            if name in winners:
                return name
        return min(winners)

    def compute_subscribed_topics(self) -> set[str] | None:
        """Union of members' consumer-protocol topics; None when unknown (not consumer, or unparsable)."""
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return set()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for m in self.members.values():
            try:
                parsed = subscription_topics(m.metadata(self.protocol_name))
            except KeyError:
                return None
            if parsed is None:
                return None
            topics |= parsed
        return topics

    def is_subscribed_to(self, topic: str) -> bool:
        return self.subscribed_topics is None or topic in self.subscribed_topics

    def next_generation(self, now_ms: int) -> None:
        """Kafka's initNextGeneration: bump the generation, pick the protocol, leave the join phase."""
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.transition(GroupState.EMPTY, now_ms)
        self.subscribed_topics = self.compute_subscribed_topics()
        self.pending_sync.clear()

    def member_metadata(self) -> list[tuple[str, str | None, bytes]]:
        """What the leader gets in its JoinGroup response: every member and its chosen metadata."""
        assert self.protocol_name is not None
        return [(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
                for m in self.members.values()]

    # ------------------------------------------------------------ persistence

    def to_value(self, assignment: dict[str, bytes]) -> GroupValue:
        """The GroupMetadataValue Kafka writes for this group with the given assignment."""
        members = [
            MemberValue(m.member_id, m.group_instance_id, m.client_id, m.client_host, m.rebalance_timeout_ms,
                        m.session_timeout_ms, m.metadata(self.protocol_name) if self.protocol_name else b"",
                        bytes(assignment.get(m.member_id, b"")))
            for m in self.members.values()
        ]
        return GroupValue(self.protocol_type or "", self.generation_id, self.protocol_name, self.leader_id,
                          self.state_timestamp, members)

    @classmethod
    def from_value(cls, group_id: str, v: GroupValue) -> Group:
        """Rebuilds a loaded group: Stable with its members, or Empty (as Kafka's loadGroup)."""
        state = GroupState.STABLE if v.members else GroupState.EMPTY
        group = cls(group_id, v.current_state_timestamp, state)
        group.generation_id = v.generation
        group.protocol_type = v.protocol_type or None
        group.protocol_name = v.protocol
        for mv in v.members:
            protocols = [(v.protocol, mv.subscription)] if v.protocol is not None else []
            member = Member(mv.member_id, mv.group_instance_id, mv.client_id, mv.client_host,
                            mv.rebalance_timeout, mv.session_timeout, v.protocol_type, protocols,
                            assignment=mv.assignment)
            group.add(member)
        group.leader_id = v.leader if v.leader in group.members else group.leader_id
        group.subscribed_topics = group.compute_subscribed_topics()
        return group

    # ------------------------------------------------------------ offsets

    def has_offsets(self) -> bool:
        return bool(self.offsets) or bool(self.pending_offset_commits)
