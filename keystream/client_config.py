"""Client properties for the CLI: read Java-client `--command-config` files, produce librdkafka config.

Users keep one client.properties for Kafka's Java tools and for `keystream`; the names that differ
between the Java client and librdkafka are translated here, Java-only ones are dropped with a
warning, and everything else passes through so librdkafka itself reports what it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from keystream.properties import PropertiesError, load_properties

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

RENAMED = {
    "ssl.truststore.certificates": "ssl.ca.pem",
    "ssl.keystore.certificate.chain": "ssl.certificate.pem",
    "ssl.keystore.key": "ssl.key.pem",
}
# Java client settings with no librdkafka counterpart (or consumed by the translation below).
JAVA_ONLY = frozenset({
    "key.serializer", "value.serializer", "key.deserializer", "value.deserializer",
    "ssl.protocol", "ssl.enabled.protocols", "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation", "ssl.provider", "ssl.engine.factory.class",
    "ssl.truststore.password", "default.api.timeout.ms", "interceptor.classes", "metric.reporters",
    "sasl.login.class", "sasl.client.callback.handler.class", "sasl.login.callback.handler.class",
})
_JAAS_OPTION = re.compile(r'([\w.$-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;"]+)')


class ClientConfigError(ValueError):
    """A client setting that cannot be expressed for librdkafka."""


def parse_jaas(text: str) -> tuple[str, dict[str, str]]:
    """`com.x.PlainLoginModule required username="a" password="b";` → (module class, options)."""
    match = re.match(r"\s*([\w.$]+)\s+(required|requisite|sufficient|optional)\b(.*)$", text, re.S)
    if not match:
        raise ClientConfigError("sasl.jaas.config: expected '<LoginModule> required key=\"value\" ...;'")
    body = match.group(3).strip()
    if body.endswith(";"):
        body = body[:-1]
    options = {}
    for key, raw in _JAAS_OPTION.findall(body):
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        options[key] = raw
    return match.group(1), options


def _from_jaas(text: str) -> dict[str, str]:
    module, options = parse_jaas(text)
    short = module.rsplit(".", 1)[-1]
    if short in ("PlainLoginModule", "ScramLoginModule"):
        return {k2: options[k1] for k1, k2 in (("username", "sasl.username"), ("password", "sasl.password"))
                if k1 in options}
    if short == "Krb5LoginModule":
        pairs = (("keyTab", "sasl.kerberos.keytab"), ("principal", "sasl.kerberos.principal"),
                 ("serviceName", "sasl.kerberos.service.name"))
        return {k2: options[k1] for k1, k2 in pairs if k1 in options}
    raise ClientConfigError(f"sasl.jaas.config: login module {module} is not supported by librdkafka")


def _store_type(props: Mapping[str, str], kind: str) -> str:
    explicit = props.get(f"ssl.{kind}.type")
    if explicit:
        return explicit.strip().upper()
    location = props.get(f"ssl.{kind}.location", "").lower()
    if location.endswith((".p12", ".pfx")):
        return "PKCS12"
    if location.endswith(".jks"):
        return "JKS"
    return "PEM"


def _translate_stores(props: Mapping[str, str], out: dict[str, str]) -> None:
    if "ssl.truststore.location" in props:
        if _store_type(props, "truststore") != "PEM":
            raise ClientConfigError(
                "ssl.truststore.location: librdkafka reads CA certificates only from PEM files;"
                " set ssl.truststore.type=PEM and point it at a PEM file"
            )
        out["ssl.ca.location"] = props["ssl.truststore.location"]
    if "ssl.keystore.location" in props:
        kind = _store_type(props, "keystore")
        location = props["ssl.keystore.location"]
        if kind == "PEM":
            out["ssl.certificate.location"] = location
            out["ssl.key.location"] = location
        elif kind == "PKCS12":
            out["ssl.keystore.location"] = location
            if "ssl.keystore.password" in props:
                out["ssl.keystore.password"] = props["ssl.keystore.password"]
        else:
            raise ClientConfigError(
                f"ssl.keystore.location: librdkafka cannot read {kind} keystores; use PEM or PKCS12"
            )
    elif "ssl.keystore.password" in props:
        out["ssl.keystore.password"] = props["ssl.keystore.password"]


def to_librdkafka(props: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Translate Java client properties; returns (librdkafka config, warnings to show the user)."""
    out: dict[str, str] = {}
    warnings: list[str] = []
    consumed = {"ssl.truststore.location", "ssl.truststore.type", "ssl.keystore.location",
                "ssl.keystore.type", "ssl.keystore.password", "sasl.jaas.config"}
    _translate_stores(props, out)
    if "sasl.jaas.config" in props:
        out.update(_from_jaas(props["sasl.jaas.config"]))
    for key, value in props.items():
        if key in consumed:
            continue
        if key in JAVA_ONLY:
            warnings.append(f"ignoring Java client property {key} (librdkafka has no equivalent)")
        elif key == "ssl.endpoint.identification.algorithm":
            out[key] = value.strip() or "none"
        else:
            out[RENAMED.get(key, key)] = value
    return out, warnings


def load_client_properties(path: str | Path) -> dict[str, str]:
    """Read a client properties file, turning read/parse failures into ClientConfigError."""
    try:
        return load_properties(path)
    except FileNotFoundError:
        raise ClientConfigError(f"command config {path} does not exist") from None
    except (OSError, UnicodeDecodeError, PropertiesError) as exc:
        raise ClientConfigError(f"cannot read command config {path}: {exc}") from None


def build_client_config(
    bootstrap_server: str | None,
    command_config: str | Path | None,
    extra: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """librdkafka config from, lowest first: defaults, the command-config file, `extra`.

    `--bootstrap-server` wins over the file's `bootstrap.servers` when given explicitly.
    """
    props: dict[str, str] = {}
    if command_config is not None:
        props.update(load_client_properties(command_config))
    props.update(extra or {})
    conf, warnings = to_librdkafka(props)
    if bootstrap_server:
        conf["bootstrap.servers"] = bootstrap_server
    conf.setdefault("bootstrap.servers", DEFAULT_BOOTSTRAP)
    return conf, warnings


def parse_assignment(text: str, what: str = "property") -> tuple[str, str]:
    """`key=value` → (key, value); the value may itself contain `=`."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{what} '{text}' must look like key=value")
    return key.strip(), value


def parse_config_list(text: str) -> dict[str, str]:
    """kafka-configs' `--add-config` syntax: `k1=v1,k2=[a,b],k3=v3` (brackets hold commas)."""
    items: list[str] = []
    depth, current = 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced brackets in '{text}'")
    items.append("".join(current))
    result: dict[str, str] = {}
    for item in items:
        if not item.strip():
            continue
        key, value = parse_assignment(item, "config")
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
        result[key] = value
    return result
