"""Version-independent answers of the coordinator; handlers turn them into versioned responses."""

from __future__ import annotations

from dataclasses import dataclass, field

from keystream.broker.errors import ErrorCode


@dataclass(slots=True)
class JoinResult:
    member_id: str
    error: ErrorCode = ErrorCode.NONE
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    skip_assignment: bool = False
    # (member id, group.instance.id, metadata): filled for the leader only
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class SyncResult:
    error: ErrorCode = ErrorCode.NONE
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(slots=True)
class LeaveResult:
    error: ErrorCode = ErrorCode.NONE
    # (member id, group.instance.id, error) per leaving member, in request order
    members: list[tuple[str, str | None, ErrorCode]] = field(default_factory=list)


@dataclass(slots=True)
class MemberSummary:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(slots=True)
class GroupSummary:
    """DescribeGroups' view; Kafka fills protocol data and member bytes only when Stable."""

    group_id: str
    error: ErrorCode = ErrorCode.NONE
    state: str = ""
    protocol_type: str = ""
    protocol: str = ""
    members: list[MemberSummary] = field(default_factory=list)


@dataclass(slots=True)
class GroupOverview:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = "classic"


@dataclass(slots=True)
class FetchedOffset:
    offset: int = -1
    leader_epoch: int = -1
    metadata: str = ""
    error: ErrorCode = ErrorCode.NONE


TopicPartition = tuple[str, int]


@dataclass(slots=True)
class CommitRequestPartition:
    """One partition of an OffsetCommit, after the handler's topic checks."""

    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = ""
    commit_timestamp: int = -1  # v1 only; -1 means "now"
    expire_timestamp: int = -1  # v2-4 with a retention time
