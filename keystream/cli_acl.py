"""`keystream acl add|list|remove`: Kafka's kafka-acls.sh over the Admin API (CreateAcls,
DescribeAcls, DeleteAcls through confluent-kafka), with kafka-acls' flags and defaults:
hosts default to `*`, operations to All, the pattern type to literal (any for `list`);
`--producer` / `--consumer` expand to the ACLs those roles need.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import click
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from keystream.auth.acl import SUPPORTED_OPERATIONS, Operation
from keystream.auth.acl import ResourceType as KsResourceType
from keystream.cli_common import ADMIN_TIMEOUT_S, client_config, client_options, describe_error, fail

CLUSTER_NAME = "kafka-cluster"
OPERATIONS = {op.name.replace("_", ""): op for op in AclOperation if op.value > AclOperation.ANY.value}
_KS_TYPES = {ResourceType.TOPIC: KsResourceType.TOPIC, ResourceType.GROUP: KsResourceType.GROUP,
             ResourceType.BROKER: KsResourceType.CLUSTER, ResourceType.TRANSACTIONAL_ID: KsResourceType.TRANSACTIONAL_ID}
_TYPE_NAMES = {ResourceType.TOPIC: "TOPIC", ResourceType.GROUP: "GROUP", ResourceType.BROKER: "CLUSTER",
               ResourceType.TRANSACTIONAL_ID: "TRANSACTIONAL_ID"}


def parse_operation(text: str) -> AclOperation:
    """kafka-acls names (Read, IdempotentWrite, ...), any case, `_`/`-` ignored."""
    key = text.replace("_", "").replace("-", "").upper()
    if key not in OPERATIONS:
        raise click.BadParameter(f"unknown operation '{text}'; one of: "
                                 f"{', '.join(op.name for op in OPERATIONS.values())}", param_hint="--operation")
    return OPERATIONS[key]


def _resources(topics, groups, cluster, txn_ids) -> list[tuple[ResourceType, str]]:
    return ([(ResourceType.TOPIC, t) for t in topics] + [(ResourceType.GROUP, g) for g in groups]
            + ([(ResourceType.BROKER, CLUSTER_NAME)] if cluster else [])
            + [(ResourceType.TRANSACTIONAL_ID, x) for x in txn_ids])


def _role_operations(o: dict) -> dict[tuple[ResourceType, str], list[AclOperation]]:
    """What `--producer` / `--consumer` grant, as kafka-acls does."""
    ops: dict[tuple[ResourceType, str], list[AclOperation]] = defaultdict(list)
    if o["consumer"] and (not o["topics"] or not o["groups"]):
        raise click.UsageError("--consumer needs --topic and --group")
    if o["producer"] and not o["topics"]:
        raise click.UsageError("--producer needs --topic")
    for t in o["topics"]:
        if o["producer"]:
            ops[(ResourceType.TOPIC, t)] += [AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.CREATE]
        if o["consumer"]:
            ops[(ResourceType.TOPIC, t)] += [AclOperation.READ, AclOperation.DESCRIBE]
    for g in o["groups"] if o["consumer"] else ():
        ops[(ResourceType.GROUP, g)].append(AclOperation.READ)
    for x in o["txn_ids"] if o["producer"] else ():
        ops[(ResourceType.TRANSACTIONAL_ID, x)] += [AclOperation.WRITE, AclOperation.DESCRIBE]
    if o["producer"] and o["idempotent"]:
        ops[(ResourceType.BROKER, CLUSTER_NAME)].append(AclOperation.IDEMPOTENT_WRITE)
    return ops


def _check_supported(rtype: ResourceType, op: AclOperation) -> None:
    supported = SUPPORTED_OPERATIONS[_KS_TYPES[rtype]]
    if op is not AclOperation.ALL and Operation(op.value) not in supported:
        names = ", ".join(o.name for o in supported)
        raise click.UsageError(f"ResourceType {_TYPE_NAMES[rtype]} only supports operations {names}, ALL")


def _entries(o: dict) -> list[tuple[str, str, AclPermissionType]]:
    entries = []
    for principals, hosts, perm in ((o["allow_principals"], o["allow_hosts"], AclPermissionType.ALLOW),
                                    (o["deny_principals"], o["deny_hosts"], AclPermissionType.DENY)):
        entries += [(p, h, perm) for p in principals for h in (hosts or ("*",))]
    return entries


def _bindings(o: dict, pattern: ResourcePatternType) -> list[AclBinding]:
    if o["producer"] or o["consumer"]:
        per_resource = _role_operations(o)
    else:
        ops = [parse_operation(x) for x in o["operations"]] or [AclOperation.ALL]
        per_resource = {r: ops for r in _resources(o["topics"], o["groups"], o["cluster"], o["txn_ids"])}
    if not per_resource:
        raise click.UsageError("name at least one resource: --topic, --group, --cluster or --transactional-id")
    entries = _entries(o)
    if not entries:
        raise click.UsageError("name at least one --allow-principal or --deny-principal")
    out = []
    for (rtype, name), ops in per_resource.items():
        for op in dict.fromkeys(ops):
            _check_supported(rtype, op)
            out += [AclBinding(rtype, name, pattern, p, h, op, perm) for p, h, perm in entries]
    return out


def format_binding(b: Any) -> str:
    return (f"(principal={b.principal}, host={b.host}, operation={b.operation.name}, "
            f"permissionType={b.permission_type.name})")


def format_acls(bindings: Iterable[Any]) -> list[str]:
    """kafka-acls' listing: ACLs grouped under their resource pattern."""
    grouped: dict[tuple, list[Any]] = defaultdict(list)
    for b in bindings:
        grouped[(_TYPE_NAMES.get(b.restype, b.restype.name), b.name, b.resource_pattern_type.name)].append(b)
    lines = []
    for (rtype, name, pattern), acls in sorted(grouped.items()):
        lines.append(f"Current ACLs for resource `ResourcePattern(resourceType={rtype}, name={name}, "
                     f"patternType={pattern})`: ")
        lines += [f" \t{format_binding(b)} " for b in sorted(acls, key=format_binding)]
        lines.append("")
    return lines


def acl_options(func):
    opts = [
        click.option("--allow-principal", "allow_principals", multiple=True, metavar="TYPE:NAME",
                     help="Principal granted the operations (repeatable), e.g. User:alice or Group:devs."),
        click.option("--deny-principal", "deny_principals", multiple=True, metavar="TYPE:NAME",
                     help="Principal denied the operations (repeatable)."),
        click.option("--allow-host", "allow_hosts", multiple=True, help="Host (IP) for the ALLOW ACLs [default: *]."),
        click.option("--deny-host", "deny_hosts", multiple=True, help="Host (IP) for the DENY ACLs [default: *]."),
        click.option("--operation", "operations", multiple=True,
                     help="Read, Write, Create, Delete, Alter, Describe, ClusterAction, AlterConfigs, "
                          "DescribeConfigs, IdempotentWrite or All (repeatable) [default: All]."),
        click.option("--producer", is_flag=True, help="Topic Write/Describe/Create (+ --transactional-id, --idempotent)."),
        click.option("--consumer", is_flag=True, help="Topic Read/Describe and Group Read."),
        click.option("--idempotent", is_flag=True, help="With --producer: Cluster IdempotentWrite."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return resource_options(func)


def resource_options(func):
    opts = [
        click.option("--topic", "topics", multiple=True, help="Topic (repeatable; `*` means every topic)."),
        click.option("--group", "groups", multiple=True, help="Consumer group (repeatable)."),
        click.option("--cluster", is_flag=True, help="The cluster resource (kafka-cluster)."),
        click.option("--transactional-id", "txn_ids", multiple=True, help="Transactional id (repeatable)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


PATTERN_CHOICE = click.Choice(["literal", "prefixed", "match", "any"], case_sensitive=False)


def _pattern(value: str) -> ResourcePatternType:
    return ResourcePatternType[value.upper()]


def _admin(o: dict) -> AdminClient:
    return AdminClient(client_config(o["bootstrap_server"], o["command_config"]))


@click.group()
def acl() -> None:
    """Manage ACLs (kafka-acls.sh): add, list, remove."""


@acl.command()
@client_options()
@acl_options
@click.option("--resource-pattern-type", "pattern", type=PATTERN_CHOICE, default="literal", show_default=True)
def add(**o) -> None:
    """Add ALLOW/DENY ACLs for principals on resources."""
    if o["pattern"].lower() not in ("literal", "prefixed"):
        raise click.BadParameter("add takes literal or prefixed", param_hint="--resource-pattern-type")
    bindings = _bindings(o, _pattern(o["pattern"]))
    admin = _admin(o)  # keep the client alive until its futures settle
    futures = admin.create_acls(bindings, request_timeout=ADMIN_TIMEOUT_S)
    errors = []
    for binding, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            errors.append(f"{format_binding(binding)} on {binding.name}: {describe_error(exc)}")
    if errors:
        raise fail("could not add ACLs:\n" + "\n".join(errors))
    click.echo(f"Adding ACLs for {len(bindings)} binding(s):")
    click.echo("\n".join(format_acls(bindings)))


@acl.command(name="list")
@client_options()
@resource_options
@click.option("--principal", "principals", multiple=True, help="Only ACLs of this principal (repeatable).")
@click.option("--resource-pattern-type", "pattern", type=PATTERN_CHOICE,
              help="Pattern type filter [default: literal with resources, else any].")
def list_(**o) -> None:
    """List ACLs, for the given resources (default: all)."""
    resources = _resources(o["topics"], o["groups"], o["cluster"], o["txn_ids"])
    pattern = _pattern(o["pattern"] or ("literal" if resources else "any"))
    resources = resources or [(ResourceType.ANY, None)]
    admin = _admin(o)
    found: dict[str, Any] = {}
    for rtype, name in resources:
        for principal in o["principals"] or (None,):
            f = AclBindingFilter(rtype, name, pattern, principal, None, AclOperation.ANY, AclPermissionType.ANY)
            try:
                for b in admin.describe_acls(f, request_timeout=ADMIN_TIMEOUT_S).result():
                    found[str(b)] = b
            except KafkaException as exc:
                raise fail(f"cannot list ACLs: {describe_error(exc)}") from None
    click.echo("\n".join(format_acls(found.values())))


@acl.command()
@client_options()
@acl_options
@click.option("--resource-pattern-type", "pattern", type=PATTERN_CHOICE, default="literal", show_default=True)
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
def remove(**o) -> None:
    """Remove ACLs: the ones described by the flags, or every ACL on the resources without principals."""
    pattern = _pattern(o["pattern"])
    if _entries(o):
        filters = [AclBindingFilter(b.restype, b.name, pattern, b.principal, b.host, b.operation, b.permission_type)
                   for b in _bindings(o, pattern)]
    else:
        resources = _resources(o["topics"], o["groups"], o["cluster"], o["txn_ids"])
        if not resources:
            raise click.UsageError("name at least one resource: --topic, --group, --cluster or --transactional-id")
        filters = [AclBindingFilter(rtype, name, pattern, None, None, AclOperation.ANY, AclPermissionType.ANY)
                   for rtype, name in resources]
    if not o["force"]:
        click.confirm("Are you sure you want to remove ACLs matching these filters?", abort=True)
    removed: dict[str, Any] = {}
    admin = _admin(o)  # keep the client alive until its futures settle
    for future in admin.delete_acls(filters, request_timeout=ADMIN_TIMEOUT_S).values():
        try:
            removed.update((str(b), b) for b in future.result())
        except KafkaException as exc:
            raise fail(f"cannot remove ACLs: {describe_error(exc)}") from None
    click.echo(f"Removed {len(removed)} ACL(s):")
    click.echo("\n".join(format_acls(removed.values())))
