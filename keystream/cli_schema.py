"""`keystream schema register|get|list|delete|compat`: the schema registry's REST API for humans.

Operations go through confluent-kafka's SchemaRegistryClient, so the CLI talks to the registry the
way applications do; `compat` asks for the registry's messages (verbose=true), which that client
drops, so it is one plain HTTPS request with the same TLS and Basic settings. Settings come from
`--registry-config` with the names Confluent's serializers read (`schema.registry.url`,
`schema.registry.ssl.*`, `basic.auth.user.info`), so one producer properties file can serve both;
other names in the file are Kafka client settings and are left alone. Errors are one line with
the registry's error_code, exit 1.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from keystream.auth.tls import client_context
from keystream.cli_common import fail
from keystream.client_config import ClientConfigError
from keystream.properties import PropertiesError, load_properties

try:  # the HTTP library SchemaRegistryClient uses: httpx2 where installed, else httpx
    from httpx2 import TransportError
except ImportError:
    from httpx import TransportError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_URL = "https://127.0.0.1:8081"
PREFIX = "schema.registry."
TIMEOUT_S = 30.0
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# SchemaRegistryClient retries 5xx/429 and connection failures; keep a human's wait short.
RETRIES = {"max.retries": 2, "retries.wait.ms": 200, "retries.max.wait.ms": 2000, "timeout": TIMEOUT_S}
# Confluent client names (after the prefix) -> SchemaRegistryClient's; Java PEM stores are translated.
PASSED = ("url", "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password")


def client_conf_from(props: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Confluent serializer properties -> (SchemaRegistryClient conf without retries, warnings)."""
    out: dict[str, str] = {}
    warnings: list[str] = []
    for key, value in props.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX):]
        if name in PASSED:
            out[name] = value
        elif name == "ssl.truststore.location":
            out.setdefault("ssl.ca.location", value)
        elif name == "ssl.keystore.location":  # PEM with key and chain, as the Java client reads it
            out.setdefault("ssl.certificate.location", value)
            out.setdefault("ssl.key.location", value)
        elif name not in ("basic.auth.user.info", "basic.auth.credentials.source", "ssl.truststore.type",
                          "ssl.keystore.type"):
            warnings.append(f"ignoring {key} (not a setting keystream schema uses)")
    for kind in ("truststore", "keystore"):
        if props.get(f"{PREFIX}ssl.{kind}.type", "PEM").upper() != "PEM":
            raise ClientConfigError(f"{PREFIX}ssl.{kind}.type: only PEM files are supported")
    source = props.get("basic.auth.credentials.source", props.get(f"{PREFIX}basic.auth.credentials.source",
                                                                  "USER_INFO")).upper()
    info = props.get("basic.auth.user.info", props.get(f"{PREFIX}basic.auth.user.info"))
    if source == "USER_INFO":
        if info:
            out["basic.auth.user.info"] = info
    elif source != "URL":  # URL: the credentials are in schema.registry.url
        raise ClientConfigError(f"basic.auth.credentials.source={source} is not supported (use USER_INFO or URL)")
    return out, warnings


def registry_conf(url: str | None, config_file: str | None) -> dict[str, Any]:
    """SchemaRegistryClient conf from the options: file settings, `--registry-url` wins."""
    try:
        props = load_properties(config_file) if config_file else {}
    except FileNotFoundError:
        raise ClientConfigError(f"registry config {config_file} does not exist") from None
    except (OSError, UnicodeDecodeError, PropertiesError) as exc:
        raise ClientConfigError(f"cannot read registry config {config_file}: {exc}") from None
    conf, warnings = client_conf_from(props)
    for warning in warnings:
        click.echo(f"WARN {warning}", err=True)
    if url:
        conf["url"] = url
    conf.setdefault("url", DEFAULT_URL)
    return conf


class Registry:
    """A SchemaRegistryClient plus the raw request `compat` needs, with errors as one clear line."""

    def __init__(self, conf: dict[str, Any]):
        self.conf = conf
        try:
            self.client = SchemaRegistryClient({**conf, **RETRIES})
        except (ValueError, TypeError, OSError, ssl.SSLError) as exc:
            raise fail(f"bad schema registry settings: {exc}") from None

    def call(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SchemaRegistryError as exc:
            raise fail(f"{what}: {registry_error(exc.error_message, exc.error_code, exc.http_status_code)}") from None
        except TransportError as exc:
            raise fail(f"{what}: cannot reach the schema registry at {self.url}: {exc or type(exc).__name__}") from None

    @property
    def url(self) -> str:
        return self.conf["url"].split(",")[0].strip().rstrip("/")

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings SchemaRegistryClient uses: the given CA (else the system's) and client certificate."""
        return client_context(self.conf.get("ssl.ca.location"), self.conf.get("ssl.certificate.location"),
                              self.conf.get("ssl.key.location"), self.conf.get("ssl.key.password"))

    def post(self, what: str, path: str, query: str, body: dict[str, Any]) -> Any:
        """POST JSON to the first registry URL; the registry's JSON answer or a one-line error."""
        parts = urllib.parse.urlsplit(self.url)
        headers = {"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE}
        info = self.conf.get("basic.auth.user.info") or (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            if parts.username else None)
        if info:
            headers["Authorization"] = "Basic " + base64.b64encode(info.encode()).decode()
        netloc = parts.netloc.rpartition("@")[2]
        url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + path, query, ""))
        request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
        try:
            context = self.ssl_context() if parts.scheme == "https" else None
            with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise fail(f"{what}: {http_error(exc)}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise fail(f"{what}: cannot reach the schema registry at {self.url}: {reason}") from None


def registry_error(message: str | None, code: int | None, status: int) -> str:
    return f"{message or 'no message'} (error_code {code if code not in (None, -1) else status})"


def http_error(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
        return registry_error(body.get("message"), body.get("error_code"), exc.code)
    except (ValueError, AttributeError, OSError):
        return registry_error(f"HTTP {exc.code} {exc.reason}", None, exc.code)


def registry_options(func: F) -> F:
    """`--registry-url`, `--registry-config` and `--output` on every subcommand."""
    func = click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
                        help="json for scripts.")(func)
    func = click.option("--registry-config", type=click.Path(dir_okay=False), metavar="FILE",
                        help="Properties file with schema.registry.url, schema.registry.ssl.* and "
                             "basic.auth.user.info (the names Confluent's clients use).")(func)
    func = click.option("--registry-url", metavar="URL",
                        help=f"Registry URL [default: schema.registry.url from --registry-config, else {DEFAULT_URL}].")(func)
    return func


def _registry(registry_url: str | None, registry_config: str | None) -> Registry:
    try:
        return Registry(registry_conf(registry_url, registry_config))
    except ClientConfigError as exc:
        raise fail(str(exc)) from None


def _references(values: tuple[str, ...]) -> list[SchemaReference]:
    """`name=subject:version` -> Confluent's reference (the name is how the schema refers to it)."""
    refs = []
    for text in values:
        name, _, target = text.partition("=")
        subject, _, version = target.rpartition(":")
        if not name or not subject or not version.isdigit() or int(version) < 1:
            raise click.BadParameter(f"'{text}' must look like name=subject:version", param_hint="--reference")
        refs.append(SchemaReference(name, subject, int(version)))
    return refs


def _schema(schema_file: Any, references: tuple[str, ...] = ()) -> Schema:
    return Schema(schema_file.read(), "AVRO", _references(references))


def _version(text: str | None) -> str | int:
    if text is None or text == "latest":
        return "latest"
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter("must be a number or 'latest'", param_hint="--version") from None


def _emit(output: str, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if output == "json" else text)


def _pretty(schema_str: str | None) -> str:
    try:
        return json.dumps(json.loads(schema_str or ""), indent=2)
    except ValueError:
        return schema_str or ""


def _described(registered: Any) -> dict[str, Any]:
    """Confluent's GET /subjects/{s}/versions/{v} shape."""
    schema = registered.schema
    data: dict[str, Any] = {"subject": registered.subject, "version": registered.version,
                            "id": registered.schema_id, "schemaType": schema.schema_type or "AVRO",
                            "schema": schema.schema_str}
    if schema.references:
        data["references"] = [{"name": r.name, "subject": r.subject, "version": r.version} for r in schema.references]
    return data


def _header(data: dict[str, Any]) -> str:
    parts = [f"{key} {data[key]}" for key in ("subject", "version", "id", "schemaType") if data.get(key) is not None]
    refs = ", ".join(f"{r['name']}={r['subject']}:{r['version']}" for r in data.get("references", ()))
    return "\t".join(parts) + (f"\treferences {refs}" if refs else "")


@click.group()
def schema() -> None:
    """Register, inspect and delete schemas in the schema registry (Confluent REST API)."""


schema_file_option = click.option("--schema-file", required=True, type=click.File("r", encoding="utf-8"),
                                  metavar="FILE", help="The Avro schema (JSON); '-' reads stdin.")


@schema.command()
@registry_options
@click.option("--subject", required=True, help="Subject to register under (TopicNameStrategy: <topic>-value).")
@schema_file_option
@click.option("--reference", "references", multiple=True, metavar="NAME=SUBJECT:VERSION",
              help="A named type the schema uses, registered elsewhere (repeatable).")
@click.option("--normalize", is_flag=True, help="Normalize the schema first, so equivalent texts get the same id.")
def register(registry_url: str | None, registry_config: str | None, output: str, subject: str,
             schema_file: Any, references: tuple[str, ...], normalize: bool) -> None:
    """Register a schema (an existing identical one keeps its id and version)."""
    reg = _registry(registry_url, registry_config)
    candidate = _schema(schema_file, references)
    what = f"cannot register under '{subject}'"
    registered = reg.call(what, reg.client.register_schema_full_response, subject, candidate, normalize_schemas=normalize)
    version = registered.version
    if version is None:  # the registry answered only {"id"}: ask which version that is
        version = reg.call(what, reg.client.lookup_schema, subject, candidate, normalize_schemas=normalize).version
    data = {"subject": subject, "version": version, "id": registered.schema_id}
    _emit(output, data, f"Registered subject {subject} version {version}, schema id {registered.schema_id}.")


@schema.command()
@registry_options
@click.option("--subject", help="Subject to read (with --version, default latest).")
@click.option("--version", "version_text", metavar="V", help="Version number or 'latest' [default: latest].")
@click.option("--id", "schema_id", type=click.IntRange(min=1), help="Read the schema with this global id instead.")
def get(registry_url: str | None, registry_config: str | None, output: str, subject: str | None,
        version_text: str | None, schema_id: int | None) -> None:
    """Show a schema: a subject's version, or a schema by its id."""
    if (subject is None) == (schema_id is None):
        raise click.UsageError("give either --subject (with an optional --version) or --id")
    if schema_id is not None and version_text is not None:
        raise click.UsageError("--version goes with --subject, not with --id")
    reg = _registry(registry_url, registry_config)
    if subject is not None:
        version = _version(version_text)
        registered = reg.call(f"cannot read '{subject}' version {version}", reg.client.get_version, subject, version)
        data = _described(registered)
    else:
        found = reg.call(f"cannot read schema id {schema_id}", reg.client.get_schema, schema_id)
        data = {"id": schema_id, "schemaType": found.schema_type or "AVRO", "schema": found.schema_str}
        if found.references:
            data["references"] = [{"name": r.name, "subject": r.subject, "version": r.version}
                                  for r in found.references]
    _emit(output, data, f"{_header(data)}\n{_pretty(data['schema'])}")


@schema.command(name="list")
@registry_options
@click.option("--prefix", help="Only subjects starting with this.")
@click.option("--deleted", is_flag=True, help="Include soft-deleted subjects.")
def list_(registry_url: str | None, registry_config: str | None, output: str, prefix: str | None,
          deleted: bool) -> None:
    """List subjects."""
    reg = _registry(registry_url, registry_config)
    subjects = reg.call("cannot list subjects", reg.client.get_subjects, subject_prefix=prefix, deleted=deleted)
    _emit(output, subjects, "\n".join(subjects))


@schema.command()
@registry_options
@click.option("--subject", required=True)
@click.option("--version", "version_text", metavar="V", help="Delete only this version ('latest' allowed).")
@click.option("--permanent", is_flag=True, help="Hard delete (only after a soft delete, as the registry requires).")
def delete(registry_url: str | None, registry_config: str | None, output: str, subject: str,
           version_text: str | None, permanent: bool) -> None:
    """Delete a subject or one version: soft first, then --permanent."""
    reg = _registry(registry_url, registry_config)
    if version_text is None:
        versions = reg.call(f"cannot delete '{subject}'", reg.client.delete_subject, subject, permanent=permanent)
    else:
        version = _version(version_text)
        versions = [reg.call(f"cannot delete '{subject}' version {version}", reg.client.delete_version,
                             subject, version, permanent=permanent)]
    listed = ", ".join(str(v) for v in versions)
    _emit(output, {"subject": subject, "versions": versions, "permanent": permanent},
          f"{'Permanently deleted' if permanent else 'Soft-deleted'} subject {subject} version(s) {listed}.")


@schema.command()
@registry_options
@click.option("--subject", required=True)
@schema_file_option
@click.option("--version", "version_text", metavar="V", help="Version to check against [default: latest].")
@click.option("--reference", "references", multiple=True, metavar="NAME=SUBJECT:VERSION",
              help="A named type the schema uses, registered elsewhere (repeatable).")
@click.pass_context
def compat(ctx: click.Context, registry_url: str | None, registry_config: str | None, output: str, subject: str,
           schema_file: Any, version_text: str | None, references: tuple[str, ...]) -> None:
    """Check a schema against a subject's compatibility level; exit 1 when it is incompatible."""
    reg = _registry(registry_url, registry_config)
    version = _version(version_text)
    path = f"/compatibility/subjects/{urllib.parse.quote(subject, safe='')}/versions/{version}"
    answer = reg.post(f"cannot check '{subject}'", path, "verbose=true", _schema(schema_file, references).to_dict())
    compatible = bool(answer.get("is_compatible"))
    messages = [str(m) for m in answer.get("messages") or ()]
    _emit(output, {"is_compatible": compatible, "messages": messages},
          "compatible" if compatible else "\n".join(["incompatible", *messages]))
    ctx.exit(0 if compatible else 1)
