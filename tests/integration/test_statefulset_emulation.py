"""A local StatefulSet emulation: the container entrypoint (`keystream pod broker`) started the way
Kubernetes starts pod keystream-0 of StatefulSet keystream in namespace kafka, then deleted and
started again on the same volume.

- The pod's environment is the manifest's (POD_NAME and POD_NAMESPACE from the downward API,
  KEYSTREAM_HEADLESS_SERVICE, KEYSTREAM_CLUSTER_DOMAIN); the ConfigMap (deploy/k8s's own
  server.properties), the TLS and LDAP Secrets (mode 0400), the data volume and the emptyDir are laid
  out at their mount paths under a temporary root, which KEYSTREAM_CONFIG_DIR / KEYSTREAM_RUN_DIR
  and the ConfigMap's re-rooted paths point at.
- The pod has its own network namespace and UTS namespace (hostname keystream-0); a client
  namespace is joined to it by a veth pair on a private /24 that exists only inside the two
  namespaces. Cluster DNS is emulated by /etc/netns/<ns>/hosts, which `ip netns exec` mounts over
  /etc/hosts, so the pod's advertised name resolves in the client namespace.
- The client (confluent-kafka and grpc, in `ip netns exec <client ns> python`) polls the pod's gRPC
  health Check until it says SERVING (as the readiness probe would), checks the metadata names the
  pod's DNS name as node 0, creates a topic and produces and consumes over mTLS through that name.
- SIGTERM (pod deletion) must stop the broker cleanly; the pod is started again on the same data
  directory and the client sees every record, then writes more.

Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) for `ip netns`; where network namespaces cannot be
created the test is skipped and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest

from keystream.certs import init_ca, issue
from keystream.properties import load_properties

pytestmark = [pytest.mark.keystream_only, pytest.mark.timeout(120)]

POD = "keystream-0"
NAMESPACE = "kafka"
HEADLESS = "keystream-headless"
HOST = f"{POD}.{HEADLESS}.{NAMESPACE}.svc.cluster.local"
SUBNET = "10.254.73"  # a /24 that exists only inside the two namespaces
POD_IP, CLIENT_IP = f"{SUBNET}.10", f"{SUBNET}.20"
RECORDS = 200
CONFIGMAP = Path(__file__).resolve().parents[2] / "deploy/k8s/base/config/server.properties"
STOP_TIMEOUT_S = 20

# Runs in the client namespace. argv: host, client config (JSON), phase, expected record count.
CLIENT = r'''
import json, sys, time
import grpc
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from grpc_health.v1 import health_pb2, health_pb2_grpc

host, conf, phase, expected = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
TOPIC, PARTITIONS, BATCH = "orders", 3, 200

# readiness, as the kubelet's grpc probe: Check until SERVING (each call waits for the channel)
deadline = time.monotonic() + 20
with grpc.insecure_channel(f"{host}:9095") as ch:
    check = health_pb2_grpc.HealthStub(ch).Check
    while True:
        left = deadline - time.monotonic()
        try:
            status = check(health_pb2.HealthCheckRequest(), timeout=max(0.1, min(2.0, left)),
                           wait_for_ready=True).status
        except grpc.RpcError as exc:  # DEADLINE_EXCEEDED while the logs load
            status = exc.code()
        if status == health_pb2.HealthCheckResponse.SERVING:
            break
        if left <= 0:
            raise SystemExit(f"the health endpoint did not say SERVING within 20s (last: {status})")
        time.sleep(0.1)  # the probe's period: polling with a deadline

out = {}
admin = AdminClient(conf)
metadata = admin.list_topics(timeout=15)
out["brokers"] = {str(b.id): f"{b.host}:{b.port}" for b in metadata.brokers.values()}
if phase == "first":
    for future in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
        future.result(15)

def produce(start):
    producer = Producer({**conf, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    failed = []
    for i in range(start, start + BATCH):
        producer.produce(TOPIC, key=str(i).encode(), value=f"record-{i}".encode(),
                         on_delivery=lambda err, msg: err and failed.append(str(err)))
    left = producer.flush(20)
    if left or failed:
        raise SystemExit(f"produce failed: {left} undelivered, errors {failed[:3]}")

def consume(count):
    consumer = Consumer({**conf, "group.id": f"emulation-{phase}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    seen = []
    for _ in range(200):
        for msg in consumer.consume(500, timeout=0.2):
            if msg.error():
                raise KafkaException(msg.error())
            seen.append(msg.value().decode())
        if len(seen) >= count:
            break
    consumer.close()
    return seen

if phase == "first":
    produce(0)
else:
    out["before"] = consume(expected)
    produce(expected)
out["consumed"] = consume(expected + BATCH)
print(json.dumps(out))
'''


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


class Namespaces:
    """Two network namespaces joined by a veth pair, with cluster DNS in their /etc/netns hosts files."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.pod, self.client = f"ks-pod-{tag}", f"ks-cli-{tag}"
        self.created: list[str] = []
        self.made_etc_netns = not Path("/etc/netns").exists()

    def create(self) -> None:
        if shutil.which("ip") is None:
            pytest.fail("iproute2's `ip` is missing (apt-get install iproute2): the StatefulSet emulation needs it")
        # What needs privileges (CAP_SYS_ADMIN for the namespaces, CAP_NET_ADMIN for the link): where
        # it is refused, skip and say so; every later step must work.
        for ns in (self.pod, self.client):
            self._privileged("ip", "netns", "add", ns)
            self.created.append(ns)
        self._privileged("ip", "-n", self.pod, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                         "netns", self.client)
        for ns, ip in ((self.pod, POD_IP), (self.client, CLIENT_IP)):
            _run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{POD_IP} {HOST} {POD}\n{CLIENT_IP} client\n")

    def _privileged(self, *argv: str) -> None:
        result = _run(*argv, check=False)
        if result.returncode != 0:
            reason = (f"network namespaces cannot be created here (`{' '.join(argv[:4])} ...`:"
                      f" {result.stderr.strip()}); needs root, or CAP_SYS_ADMIN and CAP_NET_ADMIN:"
                      " the StatefulSet emulation did not run")
            warnings.warn(reason, stacklevel=2)
            self.delete()
            pytest.skip(reason)

    def exec(self, ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def delete(self) -> None:
        while self.created:
            ns = self.created.pop()
            _run("ip", "netns", "del", ns, check=False)  # takes the veth pair with it
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        if self.made_etc_netns:
            with contextlib.suppress(OSError):  # still in use by another run: leave it
                Path("/etc/netns").rmdir()


class PodLayout:
    """The mounts of the pod under a temporary root, like the manifests mount them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "etc/keystream/config"  # ConfigMap keystream-broker-config
        self.tls = root / "etc/keystream/tls"        # Secret keystream-tls
        self.data = root / "var/lib/keystream"       # PVC data
        self.run = root / "run/keystream"            # emptyDir
        self.tmp = root / "tmp"                      # emptyDir /tmp (TMPDIR, KRB5RCACHEDIR)
        self.client = root / "client"                # the client's files (outside the pod)
        for d in (self.config, self.tls, self.data, self.tmp, self.client):
            d.mkdir(parents=True)
        self.run.mkdir(parents=True, mode=0o700)
        ca_dir = root / "ca"
        ca = init_ca(ca_dir)
        broker = issue(ca_dir, "broker", out_dir=ca_dir, server=True, common_name=POD,
                       sans=(f"DNS:{HOST}", f"DNS:*.{HEADLESS}.{NAMESPACE}.svc.cluster.local"))
        self.admin = issue(ca_dir, "admin", out_dir=self.client, client=True, common_name="admin")
        self.ca_cert = self.client / "ca.crt"
        shutil.copy(ca.cert, self.ca_cert)
        for name, src in (("keystore.pem", broker.pem), ("ca.crt", ca.cert)):
            shutil.copy(src, self.tls / name)
            os.chmod(self.tls / name, 0o400)  # defaultMode 0400, as the Secret volume
        # Secret keystream-ldap (optional in the manifests; the base ConfigMap names its file)
        self.ldap = root / "etc/keystream/ldap"
        self.ldap.mkdir(parents=True)
        (self.ldap / "bind-password").write_text("not-used-here\n")
        os.chmod(self.ldap / "bind-password", 0o400)
        # The ConfigMap as deploy/k8s ships it, its mount paths re-rooted under the test's directory.
        try:
            shipped = CONFIGMAP.read_text(encoding="utf-8")
        except OSError as exc:
            pytest.fail(f"the broker ConfigMap file {CONFIGMAP} cannot be read: {exc}")
        rerooted = shipped.replace("/etc/keystream/", f"{root}/etc/keystream/").replace(
            "/var/lib/keystream", f"{root}/var/lib/keystream")
        (self.config / "server.properties").write_text(rerooted)

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KEYSTREAM_", "POD_"))}
        return {**base, "POD_NAME": POD, "POD_NAMESPACE": NAMESPACE, "KEYSTREAM_HEADLESS_SERVICE": HEADLESS,
                "KEYSTREAM_CLUSTER_DOMAIN": "cluster.local", "KEYSTREAM_CONFIG_DIR": str(self.config),
                "KEYSTREAM_RUN_DIR": str(self.run), "HOSTNAME": POD, "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1", "TMPDIR": str(self.tmp), "KRB5RCACHEDIR": str(self.tmp)}

    def client_conf(self) -> dict[str, str]:
        return {"bootstrap.servers": f"{HOST}:9092", "security.protocol": "SSL", "ssl.ca.location": str(self.ca_cert),
                "ssl.certificate.location": str(self.admin.cert), "ssl.key.location": str(self.admin.key)}


# Inside the pod's network namespace: a UTS namespace with the pod's hostname, then the image's
# ENTRYPOINT + CMD (`keystream pod broker`), each step an exec so SIGTERM reaches the server itself.
BOOT = ("import os, socket, sys; socket.sethostname(sys.argv[1]);"
        " os.execv(sys.executable, [sys.executable, '-m', 'keystream', 'pod', 'broker'])")


class PodProcess:
    def __init__(self, ns: Namespaces, layout: PodLayout) -> None:
        self.ns, self.layout = ns, layout
        self.log_path = layout.root / "pod.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = self.ns.exec(self.ns.pod, "unshare", "--uts", "--", sys.executable, "-c", BOOT, POD)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.layout.data, env=self.layout.env(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def terminate(self) -> int:
        """Pod deletion: SIGTERM, then wait (terminationGracePeriodSeconds is 60; we allow less)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the pod did not stop within {STOP_TIMEOUT_S}s of SIGTERM\n{self.log()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-80:])
        except FileNotFoundError:
            return "(no log)"


def _client(ns: Namespaces, layout: PodLayout, pod: PodProcess, phase: str, expected: int) -> dict:
    script = layout.client / "client.py"
    script.write_text(CLIENT)
    argv = ns.exec(ns.client, sys.executable, str(script), HOST, json.dumps(layout.client_conf()), phase,
                   str(expected))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTREAM_")}
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=45, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the {phase} client did not finish\n--- pod log ---\n{pod.log()}") from None
    assert result.returncode == 0, (f"the {phase} client failed\n{result.stdout}\n{result.stderr[-3000:]}\n"
                                    f"--- pod log ---\n{pod.log()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _values(start: int, stop: int) -> list[str]:
    return [f"record-{i}" for i in range(start, stop)]


def test_statefulset_pod_restart_keeps_every_record():
    ns = Namespaces()
    root = Path(tempfile.mkdtemp(prefix="ks-statefulset-"))
    pod = None
    try:
        ns.create()
        layout = PodLayout(root)
        pod = PodProcess(ns, layout)

        pod.start()
        first = _client(ns, layout, pod, "first", 0)
        assert first["brokers"] == {"0": f"{HOST}:9092"}  # node.id from the ordinal, the advertised DNS name
        assert sorted(first["consumed"]) == sorted(_values(0, RECORDS))

        # what the entrypoint rendered into the emptyDir, and who the pod is
        rendered = layout.run / "server.properties"
        assert stat.S_IMODE(rendered.stat().st_mode) == 0o600
        props = load_properties(rendered)
        assert props["node.id"] == "0"
        assert props["advertised.listeners"] == f"SSL://{HOST}:9092,SASL_SSL://{HOST}:9093"
        hostname = _run("nsenter", "--target", str(pod.proc.pid), "--uts", "hostname").stdout.strip()
        assert hostname == POD
        cmdline = Path(f"/proc/{pod.proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"serve" in cmdline and str(rendered).encode() in cmdline  # the server replaced the entrypoint

        assert pod.terminate() == 0, f"unclean exit after SIGTERM\n{pod.log()}"
        assert "stopped cleanly" in pod.log()

        pod.start()  # the StatefulSet recreates keystream-0 on the same volume
        second = _client(ns, layout, pod, "second", RECORDS)
        assert sorted(second["before"]) == sorted(_values(0, RECORDS)), "records lost across the pod restart"
        assert sorted(second["consumed"]) == sorted(_values(0, 2 * RECORDS))
        assert pod.terminate() == 0, f"unclean exit after SIGTERM\n{pod.log()}"
        assert "Traceback" not in pod.log(), pod.log()
    finally:
        if pod is not None:
            pod.kill()
        ns.delete()
        shutil.rmtree(root, ignore_errors=True)
