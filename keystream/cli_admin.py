"""Plumbing shared by the commands that use the broker's gRPC admin API (`keystream tenant`, `keystream quota`).

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
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import click

from keystream.auth.tls import grpc_client_credentials
from keystream.configdef import LONG_MAX
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


class ByteSize(click.ParamType):
    """A byte count with an optional unit, at most LONG_MAX (the admin API's int64)."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int | float):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            self.fail(f"{value!r} is not a size such as 1048576, 10MB or 1GiB", param, ctx)
        size = int(Fraction(m.group(1)) * _UNITS[m.group(2).lower()])  # exact: no float overflow or rounding
        if size > LONG_MAX:
            self.fail(f"{value!r} is more than the largest size, {LONG_MAX} bytes", param, ctx)
        return size


BYTES = ByteSize()
COUNT = click.IntRange(0, LONG_MAX)


def admin_options(func: F) -> F:
    func = click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)(func)
    func = click.option("--command-config", type=click.Path(dir_okay=False), metavar="FILE",
                        help="Client properties with the TLS settings (a client certificate is required).")(func)
    func = click.option("--admin-url", metavar="HOST:PORT", envvar="KEYSTREAM_ADMIN_URL", default=DEFAULT_ADMIN_URL,
                        show_default=True, help="The broker's admin.listener (env KEYSTREAM_ADMIN_URL).")(func)
    return func


def quota_options(func: F) -> F:
    func = click.option("--request-percentage", type=click.FloatRange(min=0, min_open=True),
                        help="request_percentage quota (share of a broker thread's time, in %).")(func)
    func = click.option("--fetch-byte-rate", type=BYTES, help="consumer_byte_rate quota in bytes/s.")(func)
    func = click.option("--produce-byte-rate", type=BYTES, help="producer_byte_rate quota in bytes/s.")(func)
    return func


def quotas_of(o: dict) -> dict[str, float]:
    return {key: float(o[opt]) for opt, key in QUOTA_OPTIONS.items() if o.get(opt) is not None}


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
        creds = grpc_client_credentials(roots, key_pem, chain, props.get("ssl.key.password"))
    except ValueError as exc:
        raise click.ClickException(f"cannot use the client certificate of --command-config: {exc}") from None
    return grpc.secure_channel(admin_url or DEFAULT_ADMIN_URL, creds)


def call(method, request, what: str):
    """Runs one admin call; a gRPC error becomes `Error: <what>: <STATUS>: <details>` (exit 1)."""
    import grpc  # noqa: PLC0415

    try:
        return method(request, timeout=TIMEOUT_S)
    except grpc.RpcError as exc:
        code = exc.code().name if exc.code() else "UNKNOWN"
        raise click.ClickException(f"{what}: {code}: {exc.details()}") from None


def number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def emit(output: str, value: Any, text: Callable[[], None]) -> None:
    if output == "json":
        click.echo(json.dumps(value, indent=2, sort_keys=True))
    else:
        text()
