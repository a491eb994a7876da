"""The broker's state and lifecycle: logs, groups, identity, and the wake-ups parked fetches wait on."""

import asyncio
import base64
import logging
import os
import threading
import time
import uuid
from pathlib import Path

from keystream.auth.acl import Authorizer
from keystream.auth.scram_store import ScramStore
from keystream.auth.tenants import TenantStore
from keystream.broker.group_commit import GroupCommits
from keystream.broker.groups import GroupCoordinator
from keystream.broker.log import LogManager
from keystream.broker.metadata_log import MetadataLog
from keystream.broker.producer_ids import ProducerIdManager
from keystream.broker.quotas import QuotaManager
from keystream.broker.tenant_usage import TenantUsage

log = logging.getLogger("keystream.broker")


def _load_meta(log_dir: Path, node_id: int) -> str:
    """Returns the cluster id from meta.properties (Kafka's file), creating it on first start."""
    path = log_dir / "meta.properties"
    if path.exists():
        props = dict(
            line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
        )
        if int(props.get("node.id", node_id)) != node_id:
            raise SystemExit(f"{path} belongs to node.id={props['node.id']}, but node.id={node_id} is configured")
        return props["cluster.id"]
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    log_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n")
    os.replace(tmp, path)
    return cluster_id


class Broker:
    def __init__(self, config):
        self.config = config
        self.node_id: int = config["node.id"]
        advertised = config.advertised_listeners[0]
        self.advertised_host = advertised.host or "127.0.0.1"
        self.advertised_port = advertised.port
        # Clients are told the address of the listener they came in on, as Kafka does.
        self.endpoints = {lst.name: (lst.host or "127.0.0.1", lst.port) for lst in config.advertised_listeners}
        log_dirs = config["log.dirs"]
        self.cluster_id = _load_meta(Path(log_dirs[0]), self.node_id)
        self.logs = LogManager(log_dirs, config)
        self.groups = GroupCoordinator(self.logs, config)
        self.groups.on_append = self.notify_append
        self.producer_ids = ProducerIdManager(Path(log_dirs[0]))
        self.metadata = MetadataLog(self.logs)  # ACLs, SCRAM users and tenants
        self.tenants = TenantStore(self.metadata)
        self.authorizer = Authorizer(config, self.metadata, self.tenants)
        self.tenant_usage = TenantUsage(self.logs, self.tenants, self.authorizer)  # usage figures and limits
        self.quotas = QuotaManager(config, self.metadata, self.authorizer)  # client quotas, loaded in start()
        self.scram = ScramStore(self.metadata)
        self.group_commits = GroupCommits()
        self.schema_validator = None  # topics with confluent.*.schema.validation; needs a registry URL
        if config["confluent.schema.registry.url"]:
            from keystream.registry.validator import SchemaValidator  # fastavro and aiohttp only when used

            self.schema_validator = SchemaValidator(config)
        self._waiters: dict[tuple[str, int], set[asyncio.Future]] = {}
        self._tasks: list[asyncio.Task] = []
        self._stopping = threading.Event()  # ends a maintenance pass running in its worker thread
        self._maintenance: asyncio.Future | None = None

    async def start(self) -> None:
        started = time.monotonic()
        self.logs.load()
        self.metadata.open()
        self.tenants.load()
        self.quotas.load()
        self.authorizer.load()
        self.scram.load()
        await self.groups.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._maintain()), loop.create_task(self._flush_periodically())]
        log.info("logs loaded in %.2fs: %d topics", time.monotonic() - started, len(self.logs.topics))

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        if self._maintenance is not None:  # let a pass in its thread finish before the logs close
            await asyncio.gather(self._maintenance, return_exceptions=True)
        await self.groups.stop()
        if self.schema_validator is not None:
            await self.schema_validator.close()
        self.tenant_usage.close()
        self.metadata.close()
        self.logs.close()

    def endpoint(self, listener: str) -> tuple[str, int]:
        """(host, port) advertised for `listener` (the first advertised listener for an unknown name)."""
        return self.endpoints.get(listener, (self.advertised_host, self.advertised_port))

    # -- parked fetches ------------------------------------------------------------------------
    def data_waiter(self, partitions) -> asyncio.Future:
        """A future completed by the next append to any of `partitions` ((topic, index) pairs)."""
        fut = asyncio.get_running_loop().create_future()
        for tp in partitions:
            self._waiters.setdefault(tp, set()).add(fut)
        return fut

    def drop_waiter(self, fut: asyncio.Future, partitions) -> None:
        for tp in partitions:
            waiters = self._waiters.get(tp)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    del self._waiters[tp]

    def notify_append(self, topic: str, partition: int) -> None:
        waiters = self._waiters.pop((topic, partition), None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    # -- background work -----------------------------------------------------------------------
    async def _maintain(self) -> None:
        """Retention and compaction, at the more frequent of their two configured intervals."""
        interval = min(self.config["log.retention.check.interval.ms"], self.config["log.cleaner.backoff.ms"])
        while True:
            await asyncio.sleep(interval / 1000)
            try:
                # Off the loop: checkpoint writes, segment deletes and compaction are disk work (a
                # pass over ~50 __consumer_offsets partitions stalled the loop for up to 100 ms).
                self._maintenance = asyncio.get_running_loop().run_in_executor(None, self._maintain_once)
                await asyncio.shield(self._maintenance)
            except Exception:
                log.exception("log maintenance failed")

    def _maintain_once(self) -> None:
        """One maintenance pass, in a worker thread (every step takes the partition locks it needs)."""
        now_ms = int(time.time() * 1000)
        self.logs.run_maintenance(now_ms, stop=self._stopping)
        if not self._stopping.is_set():
            self.metadata.compact(now_ms)

    async def _flush_periodically(self) -> None:
        """Applies log.flush.interval.ms: partitions whose flush is due are fsynced off the loop."""
        interval = self.config["log.flush.scheduler.interval.ms"] / 1000
        while True:
            await asyncio.sleep(min(interval, 1.0))
            for topic in list(self.logs.topics.values()):
                for plog in topic.partitions:
                    if plog.flush_due():
                        await self.group_commits.flush(plog)
