"""The schema phase's processes: a Keystream broker that validates against a Keystream registry.

A throwaway PKI (keystream.certs) gives the registry its HTTPS certificate and two client
certificates, `CN=broker` (the broker fetching schemas) and `CN=bench` (the bench's HTTP client),
both registry super users; the registry requires a client certificate. The broker's listener is
PLAINTEXT, so TLS costs stay out of the produce comparison; the registry keeps `_schemas` on that
broker through it too (plaintext bench clients are the broker's super user, User:ANONYMOUS).
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import time
from pathlib import Path

from bench import brokers as launch
from bench.brokers import Broker, BrokerError

NAME = "keystream-schema"
REGISTRY = "registry"


class Registry(Broker):
    """`keystream registry serve` as a child process; ready when GET / answers {} over HTTPS."""

    context: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: object = None, timeout: float = 10.0) -> tuple[int, object]:
        """One HTTPS request with the bench's client certificate; -> (status, decoded JSON body)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/vnd.schemaregistry.v1+json"} if data else {})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                status, body = self.request("GET", "/", timeout=2.0)
                if status == 200 and body == {}:
                    return
                last_error = f"GET / answered {status} {body}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)  # polling a condition under a deadline
        raise BrokerError(f"{self.name} not ready after {timeout:.0f}s ({last_error})\n{self.log_tail()}")

    def register(self, subject: str, schema: str) -> int:
        status, body = self.request("POST", f"/subjects/{subject}/versions", {"schema": schema})
        if status != 200:
            raise BrokerError(f"registering {subject} answered {status} {body}")
        return body["id"]


def build(workdir: Path) -> tuple[Broker, Registry]:
    """Broker and registry (not started), their ports chosen and their certificates issued."""
    from keystream.certs import init_ca, issue

    home = workdir / NAME
    pki = home / "pki"
    ca = init_ca(pki / "ca", common_name="Keystream bench CA")
    server = issue(ca.dir, "registry", out_dir=pki, server=True, common_name="registry",
                   sans=["DNS:localhost", "IP:127.0.0.1"])
    broker_id = issue(ca.dir, "broker-client", out_dir=pki, client=True, common_name="broker")
    bench_id = issue(ca.dir, "bench", out_dir=pki, client=True, common_name="bench")
    registry_port = launch.free_port()
    broker = launch.keystream(workdir, extra_props={
        "confluent.schema.registry.url": f"https://127.0.0.1:{registry_port}",
        "confluent.ssl.truststore.location": str(ca.cert),
        "confluent.ssl.keystore.location": str(broker_id.pem),
    }, name=NAME)
    reg_home = home / REGISTRY
    reg_home.mkdir(parents=True, exist_ok=True)
    config = reg_home / "registry.properties"
    launch.write_properties(config, {
        "listeners": f"https://127.0.0.1:{registry_port}",
        "ssl.keystore.location": str(server.pem),
        "ssl.truststore.location": str(ca.cert),
        "ssl.client.authentication": "REQUIRED",
        "authentication.method": "NONE",  # every client presents a certificate anyway
        "super.users": "User:CN=broker;User:CN=bench",
        "kafkastore.bootstrap.servers": broker.bootstrap,
        "kafkastore.security.protocol": "PLAINTEXT",
    })
    argv = [sys.executable, "-m", "keystream", "registry", "serve", "--config", str(config)]
    registry = Registry(REGISTRY, argv, reg_home, registry_port)
    registry.context = ssl.create_default_context(cafile=str(ca.cert))
    registry.context.load_cert_chain(str(bench_id.cert), str(bench_id.key))
    return broker, registry
