"""`keystream pod broker|registry`: the container entrypoint on Kubernetes (deploy/Containerfile).

It reads the properties file the ConfigMap mounts (`$KEYSTREAM_CONFIG_DIR/server.properties` or
`registry.properties`, default /etc/keystream/config), adds what only the pod knows, writes the
effective file to `$KEYSTREAM_RUN_DIR` (default /run/keystream, an emptyDir; mode 0600) and replaces
itself (exec) with `keystream serve --config <it>` (or `keystream registry serve`), so the server is
the container's main process and receives SIGTERM itself.

What the pod adds to a broker's file, from the downward API (POD_NAME, POD_NAMESPACE) and
KEYSTREAM_HEADLESS_SERVICE / KEYSTREAM_CLUSTER_DOMAIN (defaults keystream-headless, cluster.local):
- `node.id`: the StatefulSet ordinal at the end of POD_NAME (`keystream-2` -> 2); a name without one
  is refused. It replaces any node.id/broker.id in the ConfigMap, which all pods share.
- `advertised.listeners`: every listener of `listeners` on the pod's stable DNS name
  `$POD_NAME.$HEADLESS.$POD_NAMESPACE.svc.$DOMAIN` with its own port, unless the ConfigMap sets
  advertised.listeners itself (typically with the `${POD_HOST}` placeholder).
- Placeholders in any value: `${POD_HOST}`, `${POD_NAME}`, `${POD_NAMESPACE}`, `${POD_ORDINAL}`
  (e.g. `sasl.kerberos.principal=kafka/${POD_HOST}@EXAMPLE.COM`); any other `${POD_...}` is an error.
`KEYSTREAM_*` environment variables still override the file: the server applies them itself. The
pod's own variables (above, and KEYSTREAM_CONFIG_DIR / KEYSTREAM_RUN_DIR) are not passed on.

A registry's file (a Deployment: no ordinal) only gets its placeholders substituted.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from keystream.config import env_name
from keystream.config_schema import BROKER_SCHEMA
from keystream.configdef import ConfigError
from keystream.listeners import parse_listeners, parse_protocol_map
from keystream.properties import PropertiesError, dump_properties, load_properties

DEFAULT_CONFIG_DIR = "/etc/keystream/config"
DEFAULT_RUN_DIR = "/run/keystream"
DEFAULT_HEADLESS_SERVICE = "keystream-headless"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
FILES = {"broker": "server.properties", "registry": "registry.properties"}
# Read by `keystream pod` only; the server would warn about them as unknown properties.
POD_ENV = ("KEYSTREAM_HEADLESS_SERVICE", "KEYSTREAM_CLUSTER_DOMAIN", "KEYSTREAM_CONFIG_DIR", "KEYSTREAM_RUN_DIR")

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # RFC 1123 label, as Kubernetes names
_ORDINAL = re.compile(r".*-(0|[1-9][0-9]{0,8})")
_PLACEHOLDER = re.compile(r"\$\{(POD_[A-Z_]*)\}")
PLACEHOLDERS = ("POD_HOST", "POD_NAME", "POD_NAMESPACE", "POD_ORDINAL")
_DEFAULTS = {prop.name: prop.default for prop in BROKER_SCHEMA}


class PodError(Exception):
    """The pod cannot be started as configured; the message says what to fix."""


@dataclass(frozen=True)
class Pod:
    """Who this pod is, from the downward API and the headless service's coordinates."""

    name: str
    namespace: str | None = None
    headless_service: str = DEFAULT_HEADLESS_SERVICE
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN

    @property
    def ordinal(self) -> int:
        match = _ORDINAL.fullmatch(self.name)
        if match is None:
            raise PodError(f"POD_NAME={self.name!r} has no StatefulSet ordinal (expected <name>-<number>, e.g."
                           " keystream-0): node.id is derived from it")
        return int(match.group(1))

    @property
    def host(self) -> str:
        if not self.namespace:
            raise PodError("POD_NAMESPACE is not set: the pod's DNS name needs it (env valueFrom fieldRef"
                           " metadata.namespace)")
        return f"{self.name}.{self.headless_service}.{self.namespace}.svc.{self.cluster_domain}"


def pod_from_env(environ: Mapping[str, str], *, required: bool = True) -> Pod | None:
    """The pod's identity from its environment; None when POD_NAME is unset and not `required`."""
    name = environ.get("POD_NAME", "").strip()
    if not name:
        if not required:
            return None
        raise PodError("POD_NAME is not set: give the container env POD_NAME from the downward API (valueFrom"
                       " fieldRef metadata.name); node.id and the advertised host are derived from it")
    namespace = environ.get("POD_NAMESPACE", "").strip() or None
    headless = environ.get("KEYSTREAM_HEADLESS_SERVICE", "").strip() or DEFAULT_HEADLESS_SERVICE
    domain = environ.get("KEYSTREAM_CLUSTER_DOMAIN", "").strip().rstrip(".") or DEFAULT_CLUSTER_DOMAIN
    for var, value in (("POD_NAME", name), ("POD_NAMESPACE", namespace), ("KEYSTREAM_HEADLESS_SERVICE", headless)):
        if value is not None and not _LABEL.fullmatch(value):
            raise PodError(f"{var}={value!r} is not a DNS label (lower-case letters, digits and '-', at most 63)")
    if not all(_LABEL.fullmatch(label) for label in domain.split(".")):
        raise PodError(f"KEYSTREAM_CLUSTER_DOMAIN={domain!r} is not a DNS name")
    return Pod(name, namespace, headless, domain)


def _substitute(props: dict[str, str], pod: Pod | None, source: str) -> dict[str, str]:
    def value_of(what: str, key: str) -> str:
        if what not in PLACEHOLDERS:
            raise PodError(f"{source}: unknown placeholder ${{{what}}} in {key} (known: "
                           + ", ".join(f"${{{p}}}" for p in PLACEHOLDERS) + ")")
        if pod is None:
            raise PodError(f"{source}: {key} uses ${{{what}}} but POD_NAME is not set")
        if what == "POD_NAMESPACE" and not pod.namespace:
            raise PodError(f"{source}: {key} uses ${{POD_NAMESPACE}} but POD_NAMESPACE is not set")
        return {"POD_HOST": lambda: pod.host, "POD_NAME": lambda: pod.name,
                "POD_NAMESPACE": lambda: pod.namespace, "POD_ORDINAL": lambda: str(pod.ordinal)}[what]()

    return {key: _PLACEHOLDER.sub(lambda m, key=key: value_of(m.group(1), key), value) for key, value in props.items()}


def render_broker(props: Mapping[str, str], pod: Pod, environ: Mapping[str, str] = os.environ,
                  source: str = "server.properties") -> dict[str, str]:
    """The broker properties of this pod: the ConfigMap's `props` with node.id from the ordinal,
    advertised.listeners on the pod's DNS name (unless set) and ${POD_*} placeholders substituted.
    `environ` is consulted for KEYSTREAM_LISTENERS / KEYSTREAM_LISTENER_SECURITY_PROTOCOL_MAP, which
    the server will apply over the file, so the advertised endpoints match the listeners it opens."""
    ordinal, host = pod.ordinal, pod.host  # errors first: a pod without identity must not start
    out = _substitute(dict(props), pod, source)
    for key in ("node.id", "broker.id"):  # one ConfigMap for every pod: the ordinal decides
        out.pop(key, None)
    if "advertised.listeners" not in out:
        def effective(name: str) -> str:
            value = environ.get(env_name(name), out.get(name))
            return value if value is not None else _DEFAULTS[name]
        try:
            protocols = parse_protocol_map(_split(effective("listener.security.protocol.map")))
            listeners = parse_listeners(_split(effective("listeners")), protocols)
        except ConfigError as exc:
            raise PodError(f"{source}: {exc}") from None
        if not listeners:
            raise PodError(f"{source}: listeners is empty: nothing to advertise")
        out["advertised.listeners"] = ",".join(f"{lst.name}://{host}:{lst.port}" for lst in listeners)
    return {"node.id": str(ordinal), **out}


def render_registry(props: Mapping[str, str], pod: Pod | None, source: str = "registry.properties") -> dict[str, str]:
    """The registry's properties: the ConfigMap's with ${POD_*} placeholders substituted."""
    return _substitute(dict(props), pod, source)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def read_config(path: Path) -> dict[str, str]:
    try:
        return load_properties(path)
    except FileNotFoundError:
        raise PodError(f"config file {path} does not exist: mount the ConfigMap there or set"
                       " KEYSTREAM_CONFIG_DIR") from None
    except IsADirectoryError:
        raise PodError(f"cannot read config file {path}: it is a directory") from None
    except (OSError, UnicodeDecodeError, PropertiesError) as exc:
        raise PodError(f"cannot read config file {path}: {exc}") from None


def write_properties(path: Path, props: Mapping[str, str], header: str) -> Path:
    """Write `props` to `path` atomically with mode 0600 (its directory made 0700 if missing)."""
    body = dump_properties(props, header=header)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, body.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise PodError(f"cannot write {path}: {exc} (KEYSTREAM_RUN_DIR must be a writable directory,"
                       " e.g. an emptyDir)") from None
    return path


def prepare(role: str, config_dir: Path, run_dir: Path, environ: Mapping[str, str]) -> Path:
    """Render this pod's properties file for `role` (broker or registry); returns its path."""
    source = config_dir / FILES[role]
    props = read_config(source)
    if role == "broker":
        pod = pod_from_env(environ)
        rendered = render_broker(props, pod, environ, str(source))
        what = f"node.id={pod.ordinal}, advertised host {pod.host}"
        ignored = [f"{key}={props[key]}" for key in ("node.id", "broker.id") if key in props]
        if ignored:
            what += f"; the ConfigMap's {', '.join(ignored)} replaced by the ordinal"
    else:
        pod = pod_from_env(environ, required=False)
        rendered = render_registry(props, pod, str(source))
        what = f"pod {pod.name}" if pod else "no POD_NAME"
    header = f"Rendered by `keystream pod {role}` from {source} ({what}); regenerated at every start."
    return write_properties(run_dir / FILES[role], rendered, header)


def server_command(role: str, path: Path, extra: list[str]) -> list[str]:
    """The server's command line (the interpreter running this, so PATH does not matter)."""
    serve = ["serve"] if role == "broker" else ["registry", "serve"]
    return [sys.executable, "-m", "keystream", *serve, "--config", str(path), *extra]


def server_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in POD_ENV}


# ---------------------------------------------------------------------------------------- CLI
def _command(role: str) -> click.Command:
    @click.command(name=role, help=f"Render this pod's {FILES[role]} and exec the {role}.")
    @click.option("--config-dir", envvar="KEYSTREAM_CONFIG_DIR", default=DEFAULT_CONFIG_DIR, show_default=True,
                  type=click.Path(file_okay=False), help=f"Where the ConfigMap is mounted ({FILES[role]}); env"
                  " KEYSTREAM_CONFIG_DIR.")
    @click.option("--run-dir", envvar="KEYSTREAM_RUN_DIR", default=DEFAULT_RUN_DIR, show_default=True,
                  type=click.Path(file_okay=False), help="Writable directory (emptyDir) for the rendered file; env"
                  " KEYSTREAM_RUN_DIR.")
    @click.option("--check", is_flag=True, help="Render, then let the server validate and print the effective"
                  " values instead of starting.")
    @click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
                  help="Passed on to the server.")
    def command(config_dir: str, run_dir: str, check: bool, log_level: str | None) -> None:
        try:
            path = prepare(role, Path(config_dir), Path(run_dir), os.environ)
        except PodError as exc:
            raise click.ClickException(str(exc)) from None
        extra = (["--check"] if check else []) + (["--log-level", log_level] if log_level else [])
        argv = server_command(role, path, extra)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(argv[0], argv, server_env(os.environ))

    return command


@click.group()
def pod() -> None:
    """Container entrypoint on Kubernetes: render the pod's properties, then exec the server.

    \b
    Reads $KEYSTREAM_CONFIG_DIR/server.properties (or registry.properties), derives node.id and the
    advertised listeners from POD_NAME, POD_NAMESPACE, KEYSTREAM_HEADLESS_SERVICE and
    KEYSTREAM_CLUSTER_DOMAIN, writes $KEYSTREAM_RUN_DIR/<file> (0600), and becomes the server.
    """


pod.add_command(_command("broker"))
pod.add_command(_command("registry"))
