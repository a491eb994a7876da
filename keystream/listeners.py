"""Kafka listener strings (`NAME://host:port,...`), the listener → security protocol map, and the plain
`host:port` addresses of the admin API (`admin.listener`, the registry's `admin.url`)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from keystream.configdef import ConfigError, Validator

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
DEFAULT_PROTOCOL_MAP = ",".join(f"{p}:{p}" for p in SECURITY_PROTOCOLS)
_UNROUTABLE = ("0.0.0.0", "::")
_ADDRESS_FORM = "expected host:port ([ipv6]:port)"


@dataclass(frozen=True)
class Listener:
    """One endpoint. An empty host means every interface (Kafka's `PLAINTEXT://:9092`)."""

    name: str
    host: str
    port: int
    security_protocol: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}://{host}:{self.port}"


def _split_address(text: str) -> tuple[str, int] | None:
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        port = rest[1:] if close and rest.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":")
        if ":" in host:
            port = ""
    if not port.isdigit() or int(port) > 65535 or any(c in host for c in "/ \t"):
        return None
    return host, int(port)


def parse_address(text: str, prop: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' (an empty host: every interface) → (host, port)."""
    address = _split_address(text)
    if address is None:
        raise ConfigError(f"Invalid value '{text}' for configuration {prop}: {_ADDRESS_FORM}")
    return address


ADDRESS = Validator(lambda v: None if not v or _split_address(v) else _ADDRESS_FORM, "host:port")  # empty: unset


def parse_protocol_map(items: list[str], prop: str = "listener.security.protocol.map") -> dict[str, str]:
    """`['NAME:PROTOCOL', ...]` → {NAME: PROTOCOL}; names are case-insensitive like Kafka's."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, protocol = item.partition(":")
        name, protocol = name.strip().upper(), protocol.strip().upper()
        if not sep or not name:
            raise ConfigError(f"Invalid value '{item}' for configuration {prop}: expected LISTENER_NAME:PROTOCOL")
        if protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"Invalid value '{item}' for configuration {prop}: unknown security protocol '{protocol}'"
                f" (one of {', '.join(SECURITY_PROTOCOLS)})"
            )
        if name in result:
            raise ConfigError(f"Invalid value for configuration {prop}: listener {name} appears twice")
        result[name] = protocol
    return result


def _parse_one(text: str, protocols: dict[str, str], prop: str) -> Listener:
    def bad(why: str) -> ConfigError:
        return ConfigError(f"Invalid value '{text}' for configuration {prop}: {why}")

    name, sep, address = text.partition("://")
    name = name.strip().upper()
    if not sep or not name:
        raise bad("expected NAME://host:port")
    if address.startswith("["):
        host, close, rest = address[1:].partition("]")
        if not close or not rest.startswith(":"):
            raise bad("expected [ipv6-address]:port")
        port_text = rest[1:]
    else:
        host, colon, port_text = address.rpartition(":")
        if not colon:
            raise bad("missing port")
        if ":" in host:
            raise bad("IPv6 addresses must be in brackets, e.g. PLAINTEXT://[::1]:9092")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise bad(f"port '{port_text}' is not a number in 0-65535")
    if name not in protocols:
        raise bad(
            f"no security protocol for listener {name}; add it to listener.security.protocol.map"
            " or use one of " + ", ".join(SECURITY_PROTOCOLS)
        )
    return Listener(name, host, int(port_text), protocols[name])


def parse_listeners(items: list[str], protocols: dict[str, str], prop: str = "listeners") -> list[Listener]:
    """Parse listener strings; names must be unique and (for `listeners`) so must ports."""
    listeners = [_parse_one(item, protocols, prop) for item in items]
    names = [listener.name for listener in listeners]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"Invalid value for configuration {prop}: listener name {name} is used twice")
    if prop == "listeners":
        ports = [listener.port for listener in listeners if listener.port != 0]
        for port in ports:
            if ports.count(port) > 1:
                raise ConfigError(f"Invalid value for configuration {prop}: port {port} is used twice")
    return listeners


def advertise(listeners: list[Listener], advertised: list[Listener] | None) -> list[Listener]:
    """The addresses clients are told: `advertised.listeners`, else `listeners` (empty host → FQDN)."""
    if advertised is None:
        advertised = listeners
    advertised = [
        Listener(lst.name, lst.host or socket.getfqdn(), lst.port, lst.security_protocol) for lst in advertised
    ]
    known = {lst.name for lst in listeners}
    for lst in advertised:
        if lst.host in _UNROUTABLE:
            raise ConfigError(
                f"Invalid value '{lst}' for configuration advertised.listeners: cannot advertise the"
                f" non-routable address {lst.host}; set advertised.listeners to a routable host"
            )
        if lst.name not in known:
            raise ConfigError(
                f"Invalid value '{lst}' for configuration advertised.listeners: listener {lst.name}"
                " is not in listeners"
            )
    return advertised
