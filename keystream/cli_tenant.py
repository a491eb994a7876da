"""`keystream tenant create|list|describe|update|delete` over the broker's gRPC admin API (`admin.listener`);
connection options, output and size units are cli_admin's.
"""

from __future__ import annotations

from typing import Any

import click

from keystream.cli_admin import (
    BYTES,
    COUNT,
    QUOTA_KEYS,
    TIMEOUT_S,
    admin_options,
    call,
    channel,
    emit,
    number,
    quota_options,
    quotas_of,
)

LIMITS = ("max_partitions", "max_storage_bytes")
USAGE = ("topics", "partitions", "storage_bytes", "bytes_in", "bytes_out", "throttle_ms", "rejected_requests")


def tenant_dict(t) -> dict[str, Any]:
    return {"name": t.name, "prefix": t.name + ".", "members": list(t.members), "admins": list(t.admins),
            "quotas": dict(sorted(t.quotas.items())),
            "max_partitions": t.max_partitions if t.HasField("max_partitions") else None,
            "max_storage_bytes": t.max_storage_bytes if t.HasField("max_storage_bytes") else None,
            "usage": {k: getattr(t.usage, k) for k in USAGE}}


def print_tenant(d: dict[str, Any]) -> None:
    click.echo(f"Tenant: {d['name']}\tPrefix: {d['prefix']}")
    click.echo(f"\tMembers: {', '.join(d['members']) or '-'}")
    click.echo(f"\tAdmins: {', '.join(d['admins']) or '-'}")
    quotas = ", ".join(f"{k}={number(v)}" for k, v in d["quotas"].items())
    click.echo(f"\tQuotas: {quotas or '-'}")
    limits = [f"{k}={d[k]}" for k in LIMITS if d[k] is not None]
    click.echo(f"\tLimits: {', '.join(limits) or '-'}")
    click.echo("\tUsage: " + ", ".join(f"{k}={d['usage'][k]}" for k in USAGE))


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
@click.option("--max-partitions", type=COUNT, help="Most partitions the tenant's topics may have.")
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
        found = call(rpc.TenantServiceStub(ch).ListTenants, pb.ListTenantsRequest(include_usage=o["output"] == "json"),
                     "cannot list tenants")
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
@click.option("--max-partitions", type=COUNT, help="Most partitions the tenant's topics may have.")
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
