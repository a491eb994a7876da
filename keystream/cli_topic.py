"""`keystream topic create|list|describe|alter|delete`: Kafka's kafka-topics.sh over the Admin API.

Config changes on `alter` (kafka-configs.sh in Kafka) use IncrementalAlterConfigs. `list` and
`describe` take a regular expression like kafka-topics; `alter` and `delete` take exact names so a
`.` in a name never matches more topics than intended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

import click
from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from keystream.broker.errors import ErrorCode
from keystream.cli_common import (
    ADMIN_TIMEOUT_S,
    assignments,
    client_config,
    client_options,
    describe_error,
    error_code,
    fail,
)
from keystream.client_config import parse_config_list


def _admin(bootstrap_server: str | None, command_config: str | None) -> AdminClient:
    return AdminClient(client_config(bootstrap_server, command_config))


def _result(future: Future, what: str) -> Any:
    try:
        return future.result()
    except KafkaException as exc:
        raise fail(f"{what}: {describe_error(exc)}") from None


def _all_topics(admin: AdminClient) -> list[str]:
    try:
        metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        raise fail(f"cannot list topics: {describe_error(exc)}") from None
    return sorted(name for name, meta in metadata.topics.items() if meta.error is None)


def topic_pattern(pattern: str | None) -> re.Pattern[str] | None:
    """Compile `--topic` as kafka-topics does (a regular expression), as a usage error if invalid."""
    try:
        return re.compile(pattern) if pattern is not None else None
    except re.error as exc:
        raise click.BadParameter(f"invalid regular expression '{pattern}': {exc}", param_hint="--topic") from None


def select_topics(names: Iterable[str], regex: re.Pattern[str] | None, exclude_internal: bool) -> list[str]:
    """Topics whose whole name matches `regex`, sorted; internal ones ('__' prefix) optionally hidden."""
    chosen = [
        name for name in names
        if (regex is None or regex.fullmatch(name)) and not (exclude_internal and name.startswith("__"))
    ]
    return sorted(chosen)


def _require(names: list[str], topic: str | None, if_exists: bool) -> list[str]:
    if topic is not None and not names and not if_exists:
        raise fail(f"UNKNOWN_TOPIC_OR_PARTITION: Topic '{topic}' does not exist as expected")
    return names


@click.group()
def topic() -> None:
    """Manage topics (like kafka-topics.sh)."""


@topic.command()
@client_options()
@click.option("--topic", "name", required=True, help="Name of the topic to create.")
@click.option("--partitions", type=click.IntRange(min=1), help="Partition count [default: the broker's num.partitions].")
@click.option("--replication-factor", type=click.IntRange(min=1),
              help="Replication factor [default: the broker's default.replication.factor].")
@click.option("--config", "configs", multiple=True, metavar="NAME=VALUE", help="A topic config (repeatable).")
@click.option("--if-not-exists", is_flag=True, help="Succeed quietly when the topic already exists.")
def create(bootstrap_server: str | None, command_config: str | None, name: str, partitions: int | None,
           replication_factor: int | None, configs: tuple[str, ...], if_not_exists: bool) -> None:
    """Create a topic."""
    settings = assignments(configs, "config")
    admin = _admin(bootstrap_server, command_config)
    new = NewTopic(name, num_partitions=partitions or -1, replication_factor=replication_factor or -1,
                   config=settings)
    future = admin.create_topics([new], request_timeout=ADMIN_TIMEOUT_S, operation_timeout=ADMIN_TIMEOUT_S)[name]
    try:
        future.result()
    except KafkaException as exc:
        if if_not_exists and error_code(exc) == ErrorCode.TOPIC_ALREADY_EXISTS:
            return
        raise fail(f"cannot create topic '{name}': {describe_error(exc)}") from None
    click.echo(f"Created topic {name}.")


@topic.command(name="list")
@client_options()
@click.option("--topic", "pattern", help="Only topics whose name matches this regular expression.")
@click.option("--exclude-internal", is_flag=True, help="Hide internal topics (names starting with '__').")
def list_(bootstrap_server: str | None, command_config: str | None, pattern: str | None,
          exclude_internal: bool) -> None:
    """List topic names."""
    regex = topic_pattern(pattern)
    admin = _admin(bootstrap_server, command_config)
    for name in select_topics(_all_topics(admin), regex, exclude_internal):
        click.echo(name)


def format_description(desc: Any, configs: dict[str, str]) -> list[str]:
    """kafka-topics' describe lines: one topic line, then one line per partition."""
    partitions = sorted(desc.partitions, key=lambda p: p.id)
    factor = len(partitions[0].replicas) if partitions else 0
    shown = ",".join(f"{k}={v}" for k, v in sorted(configs.items()))
    lines = [
        f"Topic: {desc.name}\tTopicId: {desc.topic_id}\tPartitionCount: {len(partitions)}"
        f"\tReplicationFactor: {factor}\tConfigs: {shown}"
    ]
    for part in partitions:
        leader = part.leader.id if part.leader is not None and part.leader.id >= 0 else "none"
        replicas = ",".join(str(node.id) for node in part.replicas)
        isr = ",".join(str(node.id) for node in part.isr)
        lines.append(f"\tTopic: {desc.name}\tPartition: {part.id}\tLeader: {leader}\tReplicas: {replicas}\tIsr: {isr}")
    return lines


def _overrides(admin: AdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """Topic configs set on the topic itself (not defaults); empty if the broker cannot say."""
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    futures = admin.describe_configs(resources, request_timeout=ADMIN_TIMEOUT_S)
    result: dict[str, dict[str, str]] = {}
    for resource, future in futures.items():
        try:
            entries = future.result()
        except KafkaException as exc:
            click.echo(f"WARN cannot describe configs of topic '{resource.name}': {describe_error(exc)}", err=True)
            entries = {}
        result[resource.name] = {
            key: "[hidden]" if entry.is_sensitive else str(entry.value)
            for key, entry in entries.items()
            if int(getattr(entry.source, "value", entry.source)) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        }
    return result


@topic.command()
@client_options()
@click.option("--topic", "pattern", help="Topics whose name matches this regular expression [default: all].")
@click.option("--exclude-internal", is_flag=True, help="Hide internal topics (names starting with '__').")
@click.option("--if-exists", is_flag=True, help="Succeed quietly when no topic matches.")
def describe(bootstrap_server: str | None, command_config: str | None, pattern: str | None,
             exclude_internal: bool, if_exists: bool) -> None:
    """Show partitions (leader, replicas, ISR) and topic configs."""
    regex = topic_pattern(pattern)
    admin = _admin(bootstrap_server, command_config)
    names = _require(select_topics(_all_topics(admin), regex, exclude_internal), pattern, if_exists)
    if not names:
        return
    futures = admin.describe_topics(TopicCollection(names), request_timeout=ADMIN_TIMEOUT_S)
    configs = _overrides(admin, names)
    for name in names:
        desc = _result(futures[name], f"cannot describe topic '{name}'")
        for line in format_description(desc, configs.get(name, {})):
            click.echo(line)


def _exists(admin: AdminClient, name: str, if_exists: bool) -> bool:
    if name in _all_topics(admin):
        return True
    if if_exists:
        return False
    raise fail(f"UNKNOWN_TOPIC_OR_PARTITION: Topic '{name}' does not exist as expected")


def _alter_configs(admin: AdminClient, name: str, add: dict[str, str], delete: list[str]) -> None:
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in add.items()]
    entries += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in delete]
    resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
    futures = admin.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)
    for future in futures.values():
        _result(future, f"cannot alter configs of topic '{name}'")
    click.echo(f"Completed updating config for topic {name}.")


@topic.command()
@client_options()
@click.option("--topic", "name", required=True, help="Exact name of the topic.")
@click.option("--partitions", type=click.IntRange(min=1), help="New (larger) partition count.")
@click.option("--add-config", "add_configs", multiple=True, metavar="K=V,...",
              help="Set configs, kafka-configs syntax: k1=v1,k2=[a,b] (repeatable).")
@click.option("--config", "configs", multiple=True, metavar="NAME=VALUE", help="Set one config (repeatable).")
@click.option("--delete-config", "delete_configs", multiple=True, metavar="K,...",
              help="Remove config overrides so defaults apply (repeatable, comma-separated).")
@click.option("--if-exists", is_flag=True, help="Succeed quietly when the topic does not exist.")
def alter(bootstrap_server: str | None, command_config: str | None, name: str, partitions: int | None,
          add_configs: tuple[str, ...], configs: tuple[str, ...], delete_configs: tuple[str, ...],
          if_exists: bool) -> None:
    """Add partitions to a topic or change its configs."""
    add: dict[str, str] = {}
    for text in add_configs:
        try:
            add.update(parse_config_list(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--add-config") from None
    add.update(assignments(configs, "config"))
    delete = [key.strip() for text in delete_configs for key in text.split(",") if key.strip()]
    if partitions is None and not add and not delete:
        raise click.UsageError("nothing to alter: give --partitions, --add-config/--config or --delete-config")
    both = sorted(set(add) & set(delete))
    if both:
        raise click.UsageError(f"config {', '.join(both)} is both added and deleted")
    admin = _admin(bootstrap_server, command_config)
    if not _exists(admin, name, if_exists):
        return
    if partitions is not None:
        futures = admin.create_partitions([NewPartitions(name, partitions)], request_timeout=ADMIN_TIMEOUT_S,
                                          operation_timeout=ADMIN_TIMEOUT_S)
        _result(futures[name], f"cannot change the partition count of topic '{name}'")
        click.echo(f"Topic {name} now has {partitions} partitions.")
    if add or delete:
        _alter_configs(admin, name, add, delete)


@topic.command()
@client_options()
@click.option("--topic", "name", required=True, help="Exact name of the topic.")
@click.option("--if-exists", is_flag=True, help="Succeed quietly when the topic does not exist.")
def delete(bootstrap_server: str | None, command_config: str | None, name: str, if_exists: bool) -> None:
    """Delete a topic and all its records."""
    admin = _admin(bootstrap_server, command_config)
    if not _exists(admin, name, if_exists):
        return
    futures = admin.delete_topics([name], request_timeout=ADMIN_TIMEOUT_S, operation_timeout=ADMIN_TIMEOUT_S)
    try:
        futures[name].result()
    except KafkaException as exc:
        if if_exists and error_code(exc) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            return
        raise fail(f"cannot delete topic '{name}': {describe_error(exc)}") from None
    click.echo(f"Deleted topic {name}.")
