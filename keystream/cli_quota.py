"""`keystream quota set|list`: tenant quotas over the gRPC admin API (see cli_tenant for the
connection options and size units).

    keystream quota set --tenant acme --produce-byte-rate 10MB --fetch-byte-rate 20MB
    keystream quota set --tenant acme --delete producer_byte_rate
    keystream quota list [--tenant acme] [--output json]

A tenant's quotas apply to all of its members together. Quotas per user or client id are Kafka's
client quotas (AlterClientQuotas/DescribeClientQuotas, e.g. Kafka's `kafka-configs --entity-type
users`); this command manages the tenant ones.
"""

from __future__ import annotations

import click

from keystream.cli_tenant import QUOTA_OPTIONS, admin_options, call, channel, emit, quota_options, quotas_of

KEYS = sorted(QUOTA_OPTIONS.values())


@click.group()
def quota() -> None:
    """Set and list tenant quotas (produce/fetch byte rates, request percentage)."""


@quota.command(name="set")
@admin_options
@click.option("--tenant", "name", required=True, help="The tenant whose quotas change.")
@quota_options
@click.option("--delete", "deletes", multiple=True, type=click.Choice(KEYS), help="Remove this quota (repeatable).")
def set_(**o) -> None:
    """Set (or remove) quotas of a tenant; quotas not named are kept."""
    from google.protobuf.field_mask_pb2 import FieldMask  # noqa: PLC0415

    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    quotas = quotas_of(o)
    clash = set(quotas) & set(o["deletes"])
    if clash:
        raise click.UsageError(f"{', '.join(sorted(clash))} is both set and deleted")
    if not quotas and not o["deletes"]:
        raise click.UsageError("name at least one quota to set or --delete")
    paths = [f"quotas.{k}" for k in [*quotas, *o["deletes"]]]
    request = pb.UpdateTenantRequest(tenant=pb.Tenant(name=o["name"], quotas=quotas), update_mask=FieldMask(paths=paths))
    with channel(o["admin_url"], o["command_config"]) as ch:
        t = call(rpc.TenantServiceStub(ch).UpdateTenant, request, f"cannot set quotas of tenant '{o['name']}'")
    result = {"tenant": t.name, "quotas": dict(sorted(t.quotas.items()))}
    emit(o["output"], result, lambda: click.echo(f"Quotas of tenant '{t.name}': " + (", ".join(
        f"{k}={v:g}" for k, v in result["quotas"].items()) or "none")))


@quota.command(name="list")
@admin_options
@click.option("--tenant", "name", help="Only this tenant.")
def list_(**o) -> None:
    """List tenants' quotas."""
    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    with channel(o["admin_url"], o["command_config"]) as ch:
        stub = rpc.TenantServiceStub(ch)
        if o["name"]:
            tenants = [call(stub.GetTenant, pb.GetTenantRequest(name=o["name"]), f"cannot list quotas of '{o['name']}'")]
        else:
            tenants = list(call(stub.ListTenants, pb.ListTenantsRequest(), "cannot list quotas").tenants)
    rows = [{"entity": {"tenant": t.name}, "quotas": dict(sorted(t.quotas.items()))} for t in tenants]
    emit(o["output"], rows, lambda: [click.echo(f"Quota configs for tenant '{r['entity']['tenant']}' are "
                                                + (", ".join(f"{k}={v:g}" for k, v in r["quotas"].items()) or "none"))
                                     for r in rows])
