"""`keystream tenant create|list|describe|update|delete` over the broker's gRPC admin API (`admin.listener`).

Connection: `--admin-url host:port` (default: `$KEYSTREAM_ADMIN_URL`, else 127.0.0.1:9094, where
`keystream up` serves it) and `--command-config client.properties`, whose TLS settings are the Java client's
(`ssl.truststore.location`, `ssl.keystore.location` as a PEM key + chain, `ssl.key.password`) or
librdkafka's (`ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`). The admin API
requires a client certificate. `--output json` prints machine-readable results.

Byte sizes and rates take a number of bytes or a unit: KB/MB/GB/TB (powers of 1000) or
KiB/MiB/GiB/TiB (powers of 1024), e.g. `--produce-byte-rate 10MB --max-storage-bytes 50GB`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from keystream.auth.tls import grpc_key_and_chain
from keystream.properties import PropertiesError, load_properties

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_ADMIN_URL = "127.0.0.1:9094"
TIMEOUT_S = 30.0
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
# CLI option → Kafka quota key (Kafka's tools call the consumer side "fetch" nowhere; ours do, as the issue)
QUOTA_OPTIONS = {"produce_byte_rate": "producer_byte_rate", "fetch_byte_rate": "consumer_byte_rate",
                 "request_percentage": "request_percentage"}
QUOTA_KEYS = sorted(QUOTA_OPTIONS.values())
LIMITS = ("max_partitions", "max_storage_bytes")
USAGE = ("topics", "partitions", "storage_bytes", "bytes_in", "bytes_out", "throttle_ms", "rejected_requests")


class ByteSize(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int | float):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            self.fail(f"{value!r} is not a size such as 1048576, 10MB or 1GiB", param, ctx)
        return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


BYTES = ByteSize()


def admin_options(func: F) -> F:
    func = click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)(func)
    func = click.option("--command-config", type=click.Path(dir_okay=False), metavar="FILE",
                        help="Client properties with the TLS settings (a client certificate is required).")(func)
    func = click.option("--admin-url", metavar="HOST:PORT", envvar="KEYSTREAM_ADMIN_URL", default=DEFAULT_ADMIN_URL,
                        show_default=True, help="The broker's admin.listener (env KEYSTREAM_ADMIN_URL).")(func)
    return func


def _read(props: dict[str, str], *names: str) -> bytes | None:
    for name in names:
        if props.get(name):
            try:
                return Path(props[name]).read_bytes()
            except OSError as exc:
                raise click.ClickException(f"cannot read {name} ({props[name]}): {exc.strerror}") from None
    return None


def channel(admin_url: str | None, command_config: str | None):
    """A grpc channel to the admin API with the client certificate of the command config."""
    import grpc  # noqa: PLC0415  (only the admin commands need it)

    try:
        props = load_properties(command_config) if command_config else {}
    except (OSError, PropertiesError) as exc:
        raise click.ClickException(f"cannot read --command-config: {exc}") from None
    roots = _read(props, "ssl.truststore.location", "ssl.ca.location")
    keystore = _read(props, "ssl.keystore.location")
    chain = _read(props, "ssl.certificate.location") or keystore
    key_pem = _read(props, "ssl.key.location") or keystore
    if not chain or not key_pem:
        raise click.ClickException("the admin API needs a client certificate: set ssl.keystore.location (PEM key and"
                                   " chain) in --command-config")
    try:
        key_pem, chain = grpc_key_and_chain(key_pem, chain, props.get("ssl.key.password"))
    except ValueError as exc:
        raise click.ClickException(f"cannot use the client certificate of --command-config: {exc}") from None
    creds = grpc.ssl_channel_credentials(root_certificates=roots, private_key=key_pem, certificate_chain=chain)
    return grpc.secure_channel(admin_url or DEFAULT_ADMIN_URL, creds)


def call(method, request, what: str):
    """Runs one admin call; a gRPC error becomes `Error: <what>: <STATUS>: <details>` (exit 1)."""
    import grpc  # noqa: PLC0415

    try:
        return method(request, timeout=TIMEOUT_S)
    except grpc.RpcError as exc:
        code = exc.code().name if exc.code() else "UNKNOWN"
        raise click.ClickException(f"{what}: {code}: {exc.details()}") from None


def tenant_dict(t) -> dict[str, Any]:
    return {"name": t.name, "prefix": t.name + ".", "members": list(t.members), "admins": list(t.admins),
            "quotas": dict(sorted(t.quotas.items())),
            "max_partitions": t.max_partitions if t.HasField("max_partitions") else None,
            "max_storage_bytes": t.max_storage_bytes if t.HasField("max_storage_bytes") else None,
            "usage": {k: getattr(t.usage, k) for k in USAGE}}


def number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def print_tenant(d: dict[str, Any]) -> None:
    click.echo(f"Tenant: {d['name']}\tPrefix: {d['prefix']}")
    click.echo(f"\tMembers: {', '.join(d['members']) or '-'}")
    click.echo(f"\tAdmins: {', '.join(d['admins']) or '-'}")
    quotas = ", ".join(f"{k}={number(v)}" for k, v in d["quotas"].items())
    click.echo(f"\tQuotas: {quotas or '-'}")
    limits = [f"{k}={d[k]}" for k in LIMITS if d[k] is not None]
    click.echo(f"\tLimits: {', '.join(limits) or '-'}")
    click.echo("\tUsage: " + ", ".join(f"{k}={d['usage'][k]}" for k in USAGE))


def emit(output: str, value: Any, text: Callable[[], None]) -> None:
    if output == "json":
        click.echo(json.dumps(value, indent=2, sort_keys=True))
    else:
        text()


def quota_options(func: F) -> F:
    func = click.option("--request-percentage", type=click.FloatRange(min=0, min_open=True),
                        help="request_percentage quota (share of a broker thread's time, in %).")(func)
    func = click.option("--fetch-byte-rate", type=BYTES, help="consumer_byte_rate quota in bytes/s.")(func)
    func = click.option("--produce-byte-rate", type=BYTES, help="producer_byte_rate quota in bytes/s.")(func)
    return func


def quotas_of(o: dict) -> dict[str, float]:
    return {key: float(o[opt]) for opt, key in QUOTA_OPTIONS.items() if o.get(opt) is not None}


@click.group()
def tenant() -> None:
    """Manage tenants (namespaces with members, quotas and limits) over the gRPC admin API."""


@tenant.command()
@admin_options
@click.argument("name")
@click.option("--principal", "principals", multiple=True, metavar="Type:name",
              help="A member principal, e.g. User:alice or Group:acme-devs (repeatable).")
@click.option("--admin", "admins", multiple=True, metavar="Type:name", help="A tenant-admin principal (repeatable).")
@quota_options
@click.option("--max-partitions", type=click.IntRange(min=0), help="Most partitions the tenant's topics may have.")
@click.option("--max-storage-bytes", type=BYTES, help="Most bytes the tenant's partitions may hold on disk.")
def create(**o) -> None:
    """Create tenant NAME, owning every topic, group and transactional id named NAME.*"""
    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    t = pb.Tenant(name=o["name"], members=list(o["principals"]), admins=list(o["admins"]), quotas=quotas_of(o))
    if o["max_partitions"] is not None:
        t.max_partitions = o["max_partitions"]
    if o["max_storage_bytes"] is not None:
        t.max_storage_bytes = o["max_storage_bytes"]
    with channel(o["admin_url"], o["command_config"]) as ch:
        created = call(rpc.TenantServiceStub(ch).CreateTenant, pb.CreateTenantRequest(tenant=t),
                       f"cannot create tenant '{o['name']}'")
    d = tenant_dict(created)
    emit(o["output"], d, lambda: click.echo(f"Created tenant '{d['name']}' (prefix '{d['prefix']}')."))


@tenant.command(name="list")
@admin_options
def list_(**o) -> None:
    """List tenants."""
    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    with channel(o["admin_url"], o["command_config"]) as ch:
        found = call(rpc.TenantServiceStub(ch).ListTenants, pb.ListTenantsRequest(), "cannot list tenants")
    tenants = [tenant_dict(t) for t in found.tenants]
    emit(o["output"], tenants, lambda: [click.echo(t["name"]) for t in tenants])


@tenant.command()
@admin_options
@click.argument("name")
def describe(**o) -> None:
    """Show tenant NAME: members, admins, quotas, limits and what it uses now."""
    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    with channel(o["admin_url"], o["command_config"]) as ch:
        t = call(rpc.TenantServiceStub(ch).GetTenant, pb.GetTenantRequest(name=o["name"]),
                 f"cannot describe tenant '{o['name']}'")
    d = tenant_dict(t)
    emit(o["output"], d, lambda: print_tenant(d))


@tenant.command()
@admin_options
@click.argument("name")
@click.option("--add-principal", "add_members", multiple=True, metavar="Type:name", help="Add a member (repeatable).")
@click.option("--remove-principal", "remove_members", multiple=True, metavar="Type:name",
              help="Remove a member, and its admin role (repeatable).")
@click.option("--add-admin", "add_admins", multiple=True, metavar="Type:name",
              help="Make a principal a tenant admin, and a member (repeatable).")
@click.option("--remove-admin", "remove_admins", multiple=True, metavar="Type:name",
              help="Take the admin role away; the principal stays a member (repeatable).")
@quota_options
@click.option("--remove-quota", "remove_quotas", multiple=True, type=click.Choice(QUOTA_KEYS),
              help="Remove this quota (repeatable).")
@click.option("--max-partitions", type=click.IntRange(min=0), help="Most partitions the tenant's topics may have.")
@click.option("--max-storage-bytes", type=BYTES, help="Most bytes the tenant's partitions may hold on disk.")
@click.option("--remove-limit", "remove_limits", multiple=True, type=click.Choice(LIMITS),
              help="Lift this limit (repeatable).")
def update(**o) -> None:
    """Change tenant NAME: only what the options name changes, the rest is kept."""
    from google.protobuf.field_mask_pb2 import FieldMask  # noqa: PLC0415

    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    quotas = quotas_of(o)
    limits = {k: o[k] for k in LIMITS if o[k] is not None}
    for what, both in (("quota", set(quotas) & set(o["remove_quotas"])), ("limit", set(limits) & set(o["remove_limits"]))):
        if both:
            raise click.UsageError(f"{what} {', '.join(sorted(both))} is both set and removed")
    paths = [f"quotas.{k}" for k in [*quotas, *o["remove_quotas"]]] + [*limits, *o["remove_limits"]]
    lists = {k: list(o[k]) for k in ("add_members", "remove_members", "add_admins", "remove_admins")}
    if not paths and not any(lists.values()):
        raise click.UsageError("nothing to update: name a principal, admin, quota or limit to change")
    request = pb.UpdateTenantRequest(tenant=pb.Tenant(name=o["name"], quotas=quotas, **limits),
                                     update_mask=FieldMask(paths=sorted(set(paths))), **lists)
    with channel(o["admin_url"], o["command_config"]) as ch:
        t = call(rpc.TenantServiceStub(ch).UpdateTenant, request, f"cannot update tenant '{o['name']}'")
    d = tenant_dict(t)
    emit(o["output"], d, lambda: (click.echo(f"Updated tenant '{d['name']}'."), print_tenant(d)))


@tenant.command()
@admin_options
@click.argument("name")
@click.option("--if-exists", is_flag=True, help="Succeed quietly when the tenant does not exist.")
def delete(**o) -> None:
    """Delete tenant NAME (its topics and groups stay, outside any tenant)."""
    import grpc  # noqa: PLC0415

    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    with channel(o["admin_url"], o["command_config"]) as ch:
        try:
            rpc.TenantServiceStub(ch).DeleteTenant(pb.DeleteTenantRequest(name=o["name"]), timeout=TIMEOUT_S)
        except grpc.RpcError as exc:
            if not (o["if_exists"] and exc.code() == grpc.StatusCode.NOT_FOUND):
                raise click.ClickException(f"cannot delete tenant '{o['name']}': {exc.code().name}: {exc.details()}") \
                    from None
            emit(o["output"], {"deleted": False, "name": o["name"]}, lambda: None)
            return
    emit(o["output"], {"deleted": True, "name": o["name"]}, lambda: click.echo(f"Deleted tenant '{o['name']}'."))
