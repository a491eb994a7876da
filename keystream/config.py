"""The broker's configuration: Apache Kafka's property names, types and defaults.

Users bring existing `server.properties` files, so names and semantics follow Kafka; where Keystream
differs (auto-create off, a local data dir, replication factors of 1 on a single node) the schema says
so. Precedence, lowest first: defaults < properties file < `KEYSTREAM_<NAME>` env vars < overrides.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from keystream.config_schema import BROKER_SCHEMA, DEFAULT_LOG_DIR
from keystream.configdef import ConfigError, Prop, format_value
from keystream.listeners import Listener, advertise, parse_listeners, parse_protocol_map
from keystream.properties import PropertiesError, load_properties

__all__ = ["BROKER_SCHEMA", "DEFAULT_LOG_DIR", "Config", "ConfigError", "ENV_PREFIX", "load_config"]

log = logging.getLogger(__name__)

ENV_PREFIX = "KEYSTREAM_"
LISTENER_PREFIX = "listener.name."


def schema_index(schema: tuple[Prop, ...]) -> dict[str, Prop]:
    by_name: dict[str, Prop] = {}
    for prop in schema:
        for name in (prop.name, *prop.aliases):
            if name in by_name:
                raise ValueError(f"property {name} defined twice")
            by_name[name] = prop
    return by_name


def env_name(name: str) -> str:
    """`log.dirs` → `KEYSTREAM_LOG_DIRS`."""
    return ENV_PREFIX + name.upper().replace(".", "_").replace("-", "_")


class Config(Mapping[str, Any]):
    """Read-only, typed broker configuration with every schema property present."""

    def __init__(self, raw: Mapping[str, Any] | None = None, schema: tuple[Prop, ...] = BROKER_SCHEMA) -> None:
        """Build from raw values keyed by property name (strings or typed values); unknown names fail."""
        by_name = schema_index(schema)
        given = _canonical(raw or {}, by_name)
        values = {prop.name: prop.parse(given.get(prop.name, prop.default)) for prop in schema}
        # Kafka's listener-prefixed overrides, by (LISTENER NAME, property name).
        self._per_listener: dict[tuple[str, str], Any] = {}
        for name, value in given.items():
            if name not in values:
                listener, prop = _listener_prop(name, by_name)
                self._per_listener[(listener.upper(), prop.name)] = prop.parse(value)
        self._schema = schema
        self._explicit = frozenset(given)
        self._values = MappingProxyType(values)
        self._derive()

    def _derive(self) -> None:
        """Fill fallbacks (log.dirs, advertised.listeners) and check rules that span properties."""
        values = dict(self._values)
        if "log.dirs" in values and not values["log.dirs"]:
            values["log.dirs"] = [values["log.dir"]]
        self.listeners: list[Listener] = []
        self.advertised_listeners: list[Listener] = []
        self.protocol_map: dict[str, str] = {}
        if "listeners" in values:
            self.protocol_map = parse_protocol_map(values["listener.security.protocol.map"])
            self.listeners = parse_listeners(values["listeners"], self.protocol_map)
            if not self.listeners:
                raise ConfigError("Invalid value '' for configuration listeners: at least one listener is needed")
            advertised = values.get("advertised.listeners")
            parsed = None if advertised is None else parse_listeners(advertised, self.protocol_map, "advertised.listeners")
            self.advertised_listeners = advertise(self.listeners, parsed)
            values["advertised.listeners"] = [str(lst) for lst in self.advertised_listeners]
        low, high = values.get("group.min.session.timeout.ms"), values.get("group.max.session.timeout.ms")
        if low is not None and high is not None and low > high:
            raise ConfigError(
                f"Invalid value {high} for configuration group.max.session.timeout.ms: must be at least"
                f" group.min.session.timeout.ms ({low})"
            )
        names = {lst.name for lst in self.listeners}
        for listener, prop in self._per_listener:
            if names and listener not in names:
                raise ConfigError(f"Invalid configuration {LISTENER_PREFIX}{listener.lower()}.{prop}: there is no"
                                  f" listener {listener} in listeners")
        if values.get("admin.listener"):  # served with the broker's TLS material, client certificates required
            for prop in ("ssl.keystore.location", "ssl.truststore.location"):
                if not values[prop]:
                    raise ConfigError(f"Missing required configuration {prop}: needed by admin.listener")
        self._values = MappingProxyType(values)
        for lst in self.listeners:
            if lst.security_protocol.startswith("SASL_"):
                self._check_sasl_listener(lst)

    def _check_sasl_listener(self, lst: Listener) -> None:
        """A SASL listener offers at least one mechanism, and PLAIN only under TLS unless allowed."""
        prop = "sasl.enabled.mechanisms"
        if (lst.name, prop) in self._per_listener:
            prop = f"{LISTENER_PREFIX}{lst.name.lower()}.{prop}"
        mechanisms = self.for_listener(lst.name, "sasl.enabled.mechanisms")
        if not mechanisms:
            raise ConfigError(f"Invalid value '' for configuration {prop}: SASL listener {lst.name} needs a mechanism")
        if ("PLAIN" in mechanisms and lst.security_protocol == "SASL_PLAINTEXT"
                and not self.for_listener(lst.name, "sasl.mechanism.plain.allow.insecure")):
            raise ConfigError(
                f"Invalid value '{','.join(mechanisms)}' for configuration {prop}: PLAIN on the SASL_PLAINTEXT listener"
                f" {lst.name} would send passwords in clear; use SASL_SSL or set sasl.mechanism.plain.allow.insecure=true")

    def for_listener(self, listener: str, name: str) -> Any:
        """The value of a per-listener property on `listener`: its `listener.name.<listener>.<name>`
        override if set, else the broker-wide value."""
        return self._per_listener.get((listener.upper(), name), self._values[name])

    def listener_override(self, listener: str, name: str, default: Any = None) -> Any:
        """Only the `listener.name.<listener>.<name>` override (`default` when not set)."""
        return self._per_listener.get((listener.upper(), name), default)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Config({dict(self._values)!r})"

    def is_default(self, name: str) -> bool:
        """True when the value was not set by the file, the environment or an override."""
        return name not in self._explicit

    @property
    def node_id(self) -> int:
        """This node's id."""
        return self._values["node.id"]

    @property
    def log_dirs(self) -> list[str]:
        """The data directories (`log.dirs`, falling back to `log.dir`)."""
        return list(self._values["log.dirs"])

    @property
    def log_retention_ms(self) -> int:
        """Effective retention in ms (ms > minutes > hours, like Kafka); -1 means forever."""
        return _effective_ms(self._values, "log.retention")

    @property
    def log_roll_ms(self) -> int:
        """Effective segment roll time in ms (`log.roll.ms` > `log.roll.hours`)."""
        ms = self._values["log.roll.ms"]
        return ms if ms is not None else self._values["log.roll.hours"] * 3_600_000

    def describe(self) -> list[str]:
        """`name=value` lines for start-up logs and `serve --check`; passwords stay hidden."""
        lines = [f"{name}={format_value(value)}" for name, value in self._values.items()]
        lines += [f"{LISTENER_PREFIX}{listener.lower()}.{name}={format_value(value)}"
                  for (listener, name), value in self._per_listener.items()]
        return lines


def _effective_ms(values: Mapping[str, Any], prefix: str) -> int:
    if values[f"{prefix}.ms"] is not None:
        ms = values[f"{prefix}.ms"]
    elif values[f"{prefix}.minutes"] is not None:
        ms = values[f"{prefix}.minutes"] * 60_000
    else:
        ms = values[f"{prefix}.hours"] * 3_600_000
    return -1 if ms < 0 else ms


def _canonical(raw: Mapping[str, Any], by_name: dict[str, Prop]) -> dict[str, Any]:
    """Map aliases to canonical names; unknown names and conflicting aliases fail."""
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, value in raw.items():
        prop = by_name.get(name)
        if prop is None:
            listener, prop = _listener_prop(name, by_name)
            out[f"{LISTENER_PREFIX}{listener.lower()}.{prop.name}"] = value
            continue
        if prop.name in out and prop.parse(out[prop.name]) != prop.parse(value):
            raise ConfigError(
                f"Conflicting values for configuration {prop.name}: {origin[prop.name]}={out[prop.name]!r}"
                f" and {name}={value!r} must match"
            )
        out[prop.name], origin[prop.name] = value, name
    return out


def _listener_prop(name: str, by_name: Mapping[str, Prop]) -> tuple[str, Prop]:
    """`listener.name.<listener>.<prop>` → (listener, Prop) for a per-listener prop, else ConfigError."""
    listener, dot, rest = name.removeprefix(LISTENER_PREFIX).partition(".")
    prop = by_name.get(rest) if name.startswith(LISTENER_PREFIX) and dot and listener else None
    if prop is None:
        raise ConfigError(_unknown(name, by_name))
    if not prop.per_listener:
        raise ConfigError(f"Invalid configuration {name}: {prop.name} cannot be set per listener")
    return listener, prop


def _unknown(name: str, by_name: Mapping[str, Prop]) -> str:
    hint = difflib.get_close_matches(name, list(by_name), n=1)
    suffix = f" (did you mean {hint[0]}?)" if hint else ""
    return f"Unknown configuration '{name}'{suffix}"


def _from_env(environ: Mapping[str, str], by_name: dict[str, Prop]) -> dict[str, str]:
    names = {env_name(name): name for name in by_name}
    # KEYSTREAM_LISTENER_NAME_<LISTENER>_<PROP> for per-listener props (listener names may hold "_").
    per_listener = {env_name(p.name)[len(ENV_PREFIX):]: p.name for p in by_name.values() if p.per_listener}
    listener_env = env_name(LISTENER_PREFIX)
    found: dict[str, str] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        suffix = next((s for s in per_listener if key.startswith(listener_env) and key.endswith("_" + s)
                       and len(key) > len(listener_env) + len(s) + 1), None)
        if key in names:
            found[names[key]] = value
        elif suffix is not None:
            listener = key[len(listener_env):-len(suffix) - 1].lower()
            found[f"{LISTENER_PREFIX}{listener}.{per_listener[suffix]}"] = value
        else:
            log.warning("ignoring environment variable %s: no such broker property", key)
    return found


def _merge(sources: list[tuple[str, Mapping[str, Any]]], by_name: dict[str, Prop]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for label, source in sources:
        try:
            canonical = _canonical(source, by_name)
        except ConfigError as exc:
            raise ConfigError(f"{label}: {exc}") from None
        merged.update(canonical)
    return merged


def merge_sources(path: str | os.PathLike[str] | None, environment: Mapping[str, Any],
                  overrides: Mapping[str, Any] | None, by_name: dict[str, Prop]) -> dict[str, Any]:
    """The properties file (optional), then environment values, then overrides (later wins), each
    checked against `by_name`; errors name their source."""
    sources: list[tuple[str, Mapping[str, Any]]] = []
    if path is not None:
        try:
            sources.append((str(path), load_properties(Path(path))))
        except FileNotFoundError:
            raise ConfigError(f"Config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError, PropertiesError) as exc:
            raise ConfigError(f"Cannot read config file {path}: {exc}") from None
    sources.append(("environment", environment))
    sources.append(("overrides", overrides or {}))
    return _merge(sources, by_name)


def load_config(
    path: str | os.PathLike[str] | None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Config:
    """Load `path` (a Java properties file, optional), apply `KEYSTREAM_*` env vars, then overrides."""
    by_name = schema_index(BROKER_SCHEMA)
    return Config(merge_sources(path, _from_env(environ, by_name), overrides, by_name))
