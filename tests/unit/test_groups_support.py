"""Shared harness for the group coordinator tests (no tests here).

`Node` is a coordinator over real logs in a temporary directory, driven the way the server drives
it: every request is encoded with the generated codec at the chosen version, decoded, passed to the
registered handler, and the response is encoded and decoded again before the test sees it.
"""

from __future__ import annotations

import asyncio
import functools
import struct
from collections.abc import Callable
from types import SimpleNamespace

import keystream.broker.handlers.groups  # noqa: F401 - registers the handlers
import keystream.broker.handlers.offsets  # noqa: F401
from keystream.auth.acl import Authorizer
from keystream.auth.principal import ANONYMOUS, Session
from keystream.broker.context import RequestContext
from keystream.broker.groups import GroupCoordinator
from keystream.broker.handlers.registry import HANDLERS
from keystream.broker.log.manager import LogManager
from keystream.broker.protocol.codec import Writer
from keystream.broker.protocol.messages.heartbeat_request import HeartbeatRequest
from keystream.broker.protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from keystream.broker.protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment

FAST = {
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 10,
    "offsets.topic.num.partitions": 4,
}


def run(fn: Callable) -> Callable:
    """Runs an `async def test_...(...)` in a fresh event loop (the suite has no asyncio plugin)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 30))

    return wrapper


def _plain(obj):
    """Decoded bytes are memoryviews into the frame; tests compare bytes."""
    if isinstance(obj, memoryview):
        return bytes(obj)
    if isinstance(obj, list):
        return [_plain(x) for x in obj]
    if hasattr(obj, "__slots__") and not isinstance(obj, (str, bytes, int)):
        for attr in obj.__slots__:
            setattr(obj, attr, _plain(getattr(obj, attr)))
    return obj


def round_trip(msg, version: int, cls=None):
    w = Writer()
    msg.encode(w, version)
    buf = w.tobytes()
    decoded, pos = (cls or type(msg)).decode(buf, 0, version)
    assert pos == len(buf), f"{type(msg).__name__} v{version}: {len(buf) - pos} trailing bytes"
    return _plain(decoded)


class Node:
    """One broker's logs and group coordinator, restartable over the same directory."""

    def __init__(self, path, broker_config: dict | None = None, **group_config):
        self.path = path
        self.broker_config = broker_config or {}
        self.group_config = {**FAST, **{k.replace("_", "."): v for k, v in group_config.items()}}
        self.logs: LogManager | None = None
        self.groups: GroupCoordinator | None = None
        self.broker = None

    async def start(self) -> Node:
        self.logs = LogManager([str(self.path)], self.broker_config)
        self.logs.load()
        self.groups = GroupCoordinator(self.logs, {**self.broker_config, **self.group_config})
        # Authorization is always on: the harness's ANONYMOUS caller is a super user.
        self.broker = SimpleNamespace(node_id=1, advertised_host="broker.test", advertised_port=9092,
                                      endpoint=lambda listener: ("broker.test", 9092),
                                      logs=self.logs, groups=self.groups, config=self.broker_config,
                                      authorizer=Authorizer({"super.users": "User:ANONYMOUS"}, None))
        await self.groups.start()
        return self

    async def stop(self) -> None:
        await self.groups.stop()
        self.logs.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def topic(self, name: str, partitions: int = 1) -> None:
        if name not in self.logs.topics:
            self.logs.create_topic(name, partitions)

    async def call(self, request, version: int, *, client_id: str = "client", host: str = "127.0.0.1"):
        """Sends one request through the codec and its handler; returns the decoded response."""
        handler = HANDLERS[request.API_KEY]
        assert handler.supports(version), f"{type(request).__name__} v{version} is not registered"
        decoded = round_trip(request, version)
        ctx = RequestContext(self.broker, version, 1, client_id, Session(ANONYMOUS, host))
        response = await handler.fn(ctx, decoded)
        return round_trip(response, version, handler.response_cls)

    # ------------------------------------------------------------ group conveniences

    async def join(self, group: str, member_id: str = "", *, version: int = 5, instance: str | None = None,
                   protocols=(("range", b"meta"),), protocol_type: str = "consumer", session_ms: int = 10_000,
                   rebalance_ms: int = 10_000, client_id: str = "client"):
        req = JoinGroupRequest(group_id=group, session_timeout_ms=session_ms, rebalance_timeout_ms=rebalance_ms,
                               member_id=member_id, group_instance_id=instance, protocol_type=protocol_type,
                               protocols=[JoinGroupRequestProtocol(n, m) for n, m in protocols])
        return await self.call(req, version, client_id=client_id)

    async def join_new(self, group: str, **kwargs):
        """A dynamic member's full KIP-394 join: MEMBER_ID_REQUIRED, then rejoin with that id."""
        first = await self.join(group, **kwargs)
        if first.error_code != 79:  # MEMBER_ID_REQUIRED
            return first
        return await self.join(group, first.member_id, **kwargs)

    async def sync(self, group: str, generation: int, member_id: str, assignments: dict | None = None, *,
                   version: int = 3, instance: str | None = None, protocol_type=None, protocol_name=None):
        req = SyncGroupRequest(group_id=group, generation_id=generation, member_id=member_id,
                               group_instance_id=instance, protocol_type=protocol_type, protocol_name=protocol_name,
                               assignments=[SyncGroupRequestAssignment(m, a) for m, a in (assignments or {}).items()])
        return await self.call(req, version)

    async def heartbeat(self, group: str, generation: int, member_id: str, *, version: int = 3,
                        instance: str | None = None) -> int:
        req = HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id,
                               group_instance_id=instance)
        return (await self.call(req, version)).error_code

    async def stable_member(self, group: str, assignment: bytes = b"A", **kwargs):
        """Joins a one-member group and syncs; returns the JoinGroup response."""
        joined = await self.join_new(group, **kwargs)
        assert joined.error_code == 0, joined
        synced = await self.sync(group, joined.generation_id, joined.member_id, {joined.member_id: assignment},
                                 instance=kwargs.get("instance"))
        assert synced.error_code == 0, synced
        return joined


async def eventually(condition: Callable[[], object], timeout: float = 5.0, what: str = "condition",
                     interval: float = 0.005):
    """Polls `condition` until it is truthy, failing after `timeout` seconds; `interval=0` checks it
    after every turn of the event loop (for a state another task holds only briefly)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)  # a poll interval under a deadline, not a synchronisation sleep


async def finish(task: asyncio.Task, timeout: float = 5.0):
    """The result of a parked request's task, failing if it does not complete in time."""
    return await asyncio.wait_for(task, timeout)


async def parked(task: asyncio.Task) -> bool:
    """True if the task is still waiting once everything runnable has run."""
    for _ in range(5):
        await asyncio.sleep(0)
    return not task.done()


def subscription(*topics: str, version: int = 1) -> bytes:
    """A ConsumerProtocolSubscription (the Java consumer's JoinGroup metadata)."""
    out = bytearray(struct.pack(">hi", version, len(topics)))
    for t in topics:
        b = t.encode()
        out += struct.pack(">h", len(b)) + b
    out += struct.pack(">i", -1)  # user data: null
    if version >= 1:
        out += struct.pack(">i", 0)  # owned partitions
    if version >= 2:
        out += struct.pack(">i", -1)  # generation id
    return bytes(out)


def timers(node: Node) -> list:
    """Every live timer the coordinator holds (for leak checks)."""
    out = []
    for g in node.groups.groups.values():
        out += [h for h in (g.join_timer, g.sync_timer) if h is not None]
        out += [h for h in g.pending_members.values() if h is not None]
        out += [m.heartbeat for m in g.members.values() if m.heartbeat is not None]
    return out
