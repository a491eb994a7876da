"""The registry's configuration: Confluent Schema Registry's property names, one line each.

Users bring `schema-registry.properties` files, so names follow Confluent; where Keystream differs
(HTTPS only unless explicitly allowed, Basic checked against the broker's SCRAM users or LDAP) the doc
says so. The broker's `ldap.*`, ACL and TLS-detail properties are the same Prop objects as the
broker's. Precedence, lowest first: defaults < file < `KEYSTREAM_REGISTRY_<NAME>` env vars < overrides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keystream.config import Config, merge_sources, schema_index
from keystream.config_schema import BROKER_SCHEMA
from keystream.configdef import ConfigError, Prop, at_least, one_of
from keystream.listeners import parse_address

ENV_PREFIX = "KEYSTREAM_REGISTRY_"
LEVELS = ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE")
_BROKER = {prop.name: prop for prop in BROKER_SCHEMA}
_SHARED = ("ssl.key.password", "ssl.truststore.location", "ssl.enabled.protocols", "ssl.cipher.suites",
           "ssl.crl.location", "ssl.principal.mapping.rules", "super.users", "principal.groups",
           "allow.everyone.if.no.acl.found", *(name for name in _BROKER if name.startswith("ldap.")))

REGISTRY_SCHEMA: tuple[Prop, ...] = (
    # --- HTTP listeners and TLS
    Prop("listeners", "list", "https://127.0.0.1:8081", "Comma-separated `https://host:port` URLs to serve the REST API on."),
    Prop("listeners.allow.insecure", "bool", False, "Allow `http://` listeners, where schemas and Basic passwords cross the network in clear; without it such a listener fails start-up (Keystream)."),
    Prop("ssl.keystore.location", "string", None, "PEM file with the registry's private key and certificate chain (needed by https listeners)."),
    Prop("ssl.client.authentication", "string", "NONE", "Client certificates on https listeners: NONE, REQUESTED or REQUIRED; a verified certificate authenticates its principal.", one_of("NONE", "REQUESTED", "REQUIRED")),
    # --- the `_schemas` topic and the Kafka client that reads and writes it
    Prop("kafkastore.bootstrap.servers", "list", None, "Brokers of the cluster holding `kafkastore.topic` (`host:port`; Confluent's `SSL://host:port` form is accepted)."),
    Prop("kafkastore.topic", "string", "_schemas", "Compacted topic storing schemas, configs and modes; created when missing."),
    Prop("kafkastore.topic.replication.factor", "int", 1, "Replication factor of a created `kafkastore.topic` (Confluent's default is 3; a single node has 1).", at_least(1)),
    Prop("kafkastore.security.protocol", "string", "SSL", "Protocol to the brokers (Confluent's default is PLAINTEXT; Keystream's is SSL).", one_of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")),
    Prop("kafkastore.ssl.truststore.location", "string", None, "PEM bundle of the CAs trusted for the brokers' certificates."),
    Prop("kafkastore.ssl.keystore.location", "string", None, "PEM file with the client key and certificate chain the registry presents to the brokers (mTLS)."),
    Prop("kafkastore.ssl.key.password", "password", None, "Password of an encrypted key in `kafkastore.ssl.keystore.location`."),
    Prop("kafkastore.ssl.endpoint.identification.algorithm", "string", "https", "`https` verifies the brokers' host names; empty turns that off."),
    Prop("kafkastore.sasl.mechanism", "string", "SCRAM-SHA-512", "SASL mechanism to the brokers on SASL_* protocols.", one_of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")),
    Prop("kafkastore.sasl.jaas.config", "password", None, "JAAS line with the SASL `username` and `password` the registry logs in with."),
    Prop("kafkastore.timeout.ms", "int", 10000, "Bound on one write to the topic and on reading back to it (Confluent's default is 500).", at_least(1)),
    Prop("kafkastore.init.timeout.ms", "int", 60000, "Bound on creating the topic and reading it to the end at start-up.", at_least(1)),
    # --- registry behaviour
    Prop("schema.compatibility.level", "string", "backward", "Global compatibility level until one is set over the API.", one_of(*LEVELS, case_sensitive=False)),
    Prop("mode.mutability", "bool", True, "Allow changing the mode (READWRITE, READONLY, IMPORT) over the API."),
    # --- authentication and authorization of REST requests
    Prop("authentication.method", "string", "BASIC", "BASIC checks `Authorization: Basic` against `ldap.url` or the brokers' SCRAM users; NONE lets requests without credentials in as User:ANONYMOUS. Verified client certificates authenticate either way.", one_of("BASIC", "NONE")),
    Prop("authentication.realm", "string", "SchemaRegistry", "Realm named in the WWW-Authenticate header of 401 answers."),
    Prop("basic.auth.sasl.mechanism", "string", "SCRAM-SHA-512", "SASL mechanism used to check Basic credentials with a login to the brokers when `ldap.url` is not set (Keystream).", one_of("SCRAM-SHA-256", "SCRAM-SHA-512")),
    Prop("basic.auth.bootstrap.servers", "list", None, "SASL_SSL `host:port` endpoints for those logins; unset uses `kafkastore.bootstrap.servers` when the registry reaches them over SASL (Keystream)."),
    Prop("basic.auth.failure.delay.ms", "int", 1000, "Delay before a failed Basic login is answered, slowing password guessing (Keystream).", at_least(0)),
    Prop("basic.auth.cache.ttl.ms", "long", 60000, "How long a successful Basic login is reused (salted slow hash, never the password); 0 disables (Keystream).", at_least(0)),
    Prop("basic.auth.cache.max.entries", "int", 10000, "Most users kept in that cache (Keystream).", at_least(0)),
    Prop("acl.refresh.ms", "long", 5000, "How often the Kafka ACLs that authorize subjects (and, with `admin.url`, the tenants) are fetched from the brokers (Keystream).", at_least(1)),
    Prop("admin.url", "string", None, "`host:port` of the broker's gRPC admin API (its `admin.listener`), from which the tenants are read with the kafkastore client certificate (which needs Cluster Describe), so tenant members see and register only subjects of their namespace. Unset: tenants are unknown to the registry and members get what ACLs grant (Keystream)."),
    *(_BROKER[name] for name in _SHARED),
)


@dataclass(frozen=True)
class HttpListener:
    """One REST endpoint from `listeners`."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class RegistryConfig(Config):
    """Typed registry configuration; `listeners` are parsed into `http_listeners`."""

    def __init__(self, raw: Mapping[str, Any] | None = None) -> None:
        super().__init__(raw, schema=REGISTRY_SCHEMA)

    def _derive(self) -> None:
        """Replaces the broker's rules (Kafka listener names) with the registry's URL listeners."""
        self.http_listeners = [_parse_listener(text) for text in self["listeners"]]
        if not self.http_listeners:
            raise ConfigError("Invalid value '' for configuration listeners: at least one listener is needed")
        insecure = [str(lst) for lst in self.http_listeners if lst.scheme == "http"]
        if insecure and not self["listeners.allow.insecure"]:
            raise ConfigError(f"Invalid value '{','.join(insecure)}' for configuration listeners: http sends schemas and"
                              " passwords in clear; use https or set listeners.allow.insecure=true")
        if any(lst.scheme == "https" for lst in self.http_listeners) and not self["ssl.keystore.location"]:
            raise ConfigError("Missing required configuration ssl.keystore.location: needed by an https listener")
        admin = self["admin.url"]
        if admin:
            host, port = parse_address(admin, "admin.url")
            if not host or not port:
                raise ConfigError(f"Invalid value '{admin}' for configuration admin.url: name the broker's host and port")
            if not self["kafkastore.ssl.keystore.location"]:
                raise ConfigError("Missing required configuration kafkastore.ssl.keystore.location: admin.url needs"
                                  " the registry's client certificate (the admin API requires mTLS)")

    def tls_properties(self) -> dict[str, Any]:
        """The broker-named ssl.* settings keystream.auth.tls.build_server_context reads."""
        names = ("ssl.keystore.location", "ssl.key.password", "ssl.truststore.location", "ssl.enabled.protocols",
                 "ssl.cipher.suites", "ssl.crl.location")
        return {**{name: self[name] for name in names}, "ssl.client.auth": self["ssl.client.authentication"].lower()}


def _parse_listener(text: str) -> HttpListener:
    def bad(why: str) -> ConfigError:
        return ConfigError(f"Invalid value '{text}' for configuration listeners: {why}")

    try:
        url = urlsplit(text)
        port = url.port
    except ValueError as exc:
        raise bad(str(exc)) from None
    if url.scheme.lower() not in ("http", "https"):
        raise bad("expected https://host:port")
    if port is None or url.path not in ("", "/") or url.query or url.username:
        raise bad("expected https://host:port with a port and nothing else")
    return HttpListener(url.scheme.lower(), url.hostname or "", port)


def env_name(name: str) -> str:
    """`kafkastore.topic` → `KEYSTREAM_REGISTRY_KAFKASTORE_TOPIC` (its own prefix: the broker's
    `KEYSTREAM_SSL_*` variables must not reconfigure a registry started from the same shell)."""
    return ENV_PREFIX + name.upper().replace(".", "_")


def load_registry_config(path: str | os.PathLike[str] | None, overrides: Mapping[str, Any] | None = None,
                         environ: Mapping[str, str] = os.environ) -> RegistryConfig:
    """Load `path` (a Java properties file), apply `KEYSTREAM_REGISTRY_*` env vars, then overrides."""
    by_name = schema_index(REGISTRY_SCHEMA)
    from_env = {name: environ[env_name(name)] for name in by_name if env_name(name) in environ}
    return RegistryConfig(merge_sources(path, from_env, overrides, by_name))
