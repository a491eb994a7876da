"""`keystream quota set|list`: client quotas over the gRPC admin API (QuotaService; see cli_admin for
the connection options and size units).

The entities are Kafka's (`kafka-configs --entity-type users|clients`) plus Keystream's tenants:

    keystream quota set --user alice --produce-byte-rate 1MB          # one user, all her clients
    keystream quota set --user alice --client-id app --add-config consumer_byte_rate=2097152
    keystream quota set --default-user --request-percentage 50       # each user without its own
    keystream quota set --tenant acme --produce-byte-rate 10MB        # acme's members together
    keystream quota set --user alice --delete producer_byte_rate,consumer_byte_rate
    keystream quota list [--user alice | --default-user] [--client-id C | --default-client-id]
                         [--tenant acme] [--output json]

Keys and units are Kafka's: producer_byte_rate and consumer_byte_rate in bytes/s, request_percentage
in percent of one request-handling thread. A named entity in `list` matches as kafka-configs
describes it: exactly that entity (user alice, not user alice with a client id).
"""

from __future__ import annotations

from typing import Any

import click

from keystream.cli_admin import (
    BYTES,
    QUOTA_KEYS,
    admin_options,
    call,
    channel,
    emit,
    number,
    quota_options,
    quotas_of,
)

TYPE_NAMES = {"user": "user-principal", "client-id": "client-id", "tenant": "tenant"}


def entity_options(func):
    func = click.option("--tenant", help="A tenant: its members together (not combined with the others).")(func)
    func = click.option("--default-client-id", is_flag=True, help="The default client-id entity.")(func)
    func = click.option("--client-id", help="A client id (with --user: that user's client).")(func)
    func = click.option("--default-user", is_flag=True, help="The default user entity (each user of its own).")(func)
    func = click.option("--user", help="A user: the principal's name without its type (alice for User:alice).")(func)
    return func


def entity_pairs(o: dict) -> list[tuple[str, str | None]]:
    """[(Kafka entity type, name or None for the default)] of the options, checked for clashes."""
    pairs: list[tuple[str, str | None]] = []
    for etype, name, default in (("user", o["user"], o["default_user"]),
                                 ("client-id", o["client_id"], o["default_client_id"])):
        if name is not None and default:
            raise click.UsageError(f"--{etype} and --default-{etype} exclude each other")
        if name is not None or default:
            pairs.append((etype, name))
    if o["tenant"] is not None:
        if pairs:
            raise click.UsageError("--tenant is not combined with --user or --client-id")
        pairs.append(("tenant", o["tenant"]))
    return pairs


def _codes(pb) -> dict[str, int]:
    return {"user": pb.QUOTA_ENTITY_TYPE_USER, "client-id": pb.QUOTA_ENTITY_TYPE_CLIENT_ID,
            "tenant": pb.QUOTA_ENTITY_TYPE_TENANT}


def _row(pb, entry) -> dict[str, Any]:
    names = {code: name for name, code in _codes(pb).items()}
    entity = {names[c.type]: (c.name if c.HasField("name") else None) for c in entry.entity.components}
    return {"entity": entity, "quotas": dict(sorted(entry.quotas.items()))}


def describe_row(row: dict[str, Any]) -> str:
    """Kafka's kafka-configs wording: "Quota configs for user-principal 'alice', client-id 'app' are ..."."""
    who = ", ".join(f"the default {TYPE_NAMES[t]}" if n is None else f"{TYPE_NAMES[t]} '{n}'"
                    for t, n in row["entity"].items())
    values = ", ".join(f"{k}={number(v)}" for k, v in row["quotas"].items())
    return f"Quota configs for {who} are {values or 'none'}"


def parse_add_config(text: str | None) -> dict[str, float]:
    """kafka-configs' `--add-config k1=v1,k2=v2` (byte rates take units too: 10MB)."""
    out: dict[str, float] = {}
    for item in filter(None, (text or "").split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in QUOTA_KEYS:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE with KEY one of {', '.join(QUOTA_KEYS)}",
                                     param_hint="--add-config")
        if key == "request_percentage":
            try:
                out[key] = float(value)
            except ValueError:
                raise click.BadParameter(f"{item!r}: not a number", param_hint="--add-config") from None
        else:
            out[key] = float(BYTES.convert(value, None, None))
    return out


def _quota_keys(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    """`--delete k1,k2 --delete k3` → (k1, k2, k3), each a quota key."""
    keys = [key.strip() for value in values for key in value.split(",")]
    for key in keys:
        if key not in QUOTA_KEYS:
            raise click.BadParameter(f"{key!r} is not one of {', '.join(QUOTA_KEYS)}")
    return tuple(dict.fromkeys(keys))


@click.group()
def quota() -> None:
    """Set and list client quotas of users, client ids and tenants (byte rates, request percentage)."""


@quota.command(name="set")
@admin_options
@entity_options
@quota_options
@click.option("--add-config", metavar="KEY=VALUE,...", help="Kafka's form, e.g. producer_byte_rate=1048576.")
@click.option("--delete", "--delete-config", "deletes", multiple=True, metavar="KEY[,KEY...]", callback=_quota_keys,
              help=f"Remove these quotas (repeatable; kafka-configs' k1,k2 form too): {', '.join(QUOTA_KEYS)}.")
@click.option("--validate-only", is_flag=True, help="Check the change without applying it.")
def set_(**o) -> None:
    """Set (or remove) quotas of one entity; quotas not named are kept."""
    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    pairs = entity_pairs(o)
    if not pairs:
        raise click.UsageError("name the entity: --user, --default-user, --client-id, --default-client-id or --tenant")
    quotas = quotas_of(o)
    added = parse_add_config(o["add_config"])
    for clash in (set(quotas) & set(added), set(quotas) & set(o["deletes"]), set(added) & set(o["deletes"])):
        if clash:
            raise click.UsageError(f"{', '.join(sorted(clash))} is given twice")
    quotas.update(added)
    if not quotas and not o["deletes"]:
        raise click.UsageError("name at least one quota to set or --delete")
    request = pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(
        entity=pb.QuotaEntity(components=[pb.QuotaEntityComponent(type=_codes(pb)[t], name=n) for t, n in pairs]),
        set=quotas, remove=list(o["deletes"]))], validate_only=o["validate_only"])
    with channel(o["admin_url"], o["command_config"]) as ch:
        result = call(rpc.QuotaServiceStub(ch).SetQuotas, request, "cannot set quotas")
    row = _row(pb, result.entries[0])
    verb = "Would set" if o["validate_only"] else "Set"
    emit(o["output"], row, lambda: click.echo(f"{verb}: {describe_row(row)}."))


@quota.command(name="list")
@admin_options
@entity_options
def list_(**o) -> None:
    """List quotas: every entity's, or the one the options name."""
    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    pairs = entity_pairs(o)
    codes = _codes(pb)
    components = [pb.QuotaFilterComponent(type=codes[t], match=pb.QUOTA_MATCH_DEFAULT) if n is None else
                  pb.QuotaFilterComponent(type=codes[t], match=pb.QUOTA_MATCH_EXACT, name=n) for t, n in pairs]
    request = pb.ListQuotasRequest(components=components, strict=bool(components))
    with channel(o["admin_url"], o["command_config"]) as ch:
        found = call(rpc.QuotaServiceStub(ch).ListQuotas, request, "cannot list quotas")
    rows = [_row(pb, e) for e in found.entries]
    emit(o["output"], rows, lambda: [click.echo(describe_row(r)) for r in rows])
