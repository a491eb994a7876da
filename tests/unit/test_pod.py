"""`keystream pod broker|registry` (keystream/pod.py), the container entrypoint: the render functions,
the file it writes, its errors, and the real exec into `serve --check`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from keystream.cli import cli
from keystream.config import load_config
from keystream.pod import (
    Pod,
    PodError,
    pod_from_env,
    prepare,
    read_config,
    render_broker,
    render_registry,
    server_env,
    write_properties,
)
from keystream.properties import load_properties

HOST = "keystream-2.keystream-headless.kafka.svc.cluster.local"
CONFIGMAP = {
    "listeners": "SSL://:9092,SASL_SSL://:9093",
    "listener.security.protocol.map": "SSL:SSL,SASL_SSL:SASL_SSL",
    "log.dirs": "/var/lib/keystream/data",
    "health.listener": ":9095",
}
POD_ENV = {"POD_NAME": "keystream-2", "POD_NAMESPACE": "kafka"}


def _pod(name: str = "keystream-2", namespace: str | None = "kafka", **kw) -> Pod:
    return Pod(name, namespace, **kw)


# ------------------------------------------------------------------------------------ broker render
def test_node_id_and_advertised_listeners_from_the_pod():
    out = render_broker(CONFIGMAP, _pod(), environ={})
    assert out["node.id"] == "2"
    assert out["advertised.listeners"] == f"SSL://{HOST}:9092,SASL_SSL://{HOST}:9093"
    assert {k: out[k] for k in CONFIGMAP} == CONFIGMAP  # the rest as the ConfigMap says


@pytest.mark.parametrize("name, ordinal", [("keystream-0", 0), ("keystream-10", 10), ("my-kafka-cluster-7", 7)])
def test_ordinal(name, ordinal):
    assert _pod(name).ordinal == ordinal
    assert render_broker(CONFIGMAP, _pod(name), environ={})["node.id"] == str(ordinal)


def test_configmap_node_id_is_replaced_by_the_ordinal():
    out = render_broker({**CONFIGMAP, "broker.id": "9", "node.id": "9"}, _pod(), environ={})
    assert out["node.id"] == "2" and "broker.id" not in out


def test_headless_service_and_cluster_domain():
    pod = pod_from_env({**POD_ENV, "KEYSTREAM_HEADLESS_SERVICE": "ks", "KEYSTREAM_CLUSTER_DOMAIN": "corp.example."})
    assert pod.host == "keystream-2.ks.kafka.svc.corp.example"
    assert render_broker({"listeners": "SSL://:9092"}, pod, environ={})["advertised.listeners"] == \
        "SSL://keystream-2.ks.kafka.svc.corp.example:9092"


def test_explicit_advertised_listeners_with_placeholders():
    props = {**CONFIGMAP, "advertised.listeners": "SSL://${POD_HOST}:9092,SASL_SSL://${POD_HOST}:19093",
             "sasl.kerberos.principal": "kafka/${POD_HOST}@EXAMPLE.COM",
             "log.dirs": "/var/lib/keystream/${POD_NAMESPACE}/${POD_NAME}/${POD_ORDINAL}"}
    out = render_broker(props, _pod(), environ={})
    assert out["advertised.listeners"] == f"SSL://{HOST}:9092,SASL_SSL://{HOST}:19093"
    assert out["sasl.kerberos.principal"] == f"kafka/{HOST}@EXAMPLE.COM"
    assert out["log.dirs"] == "/var/lib/keystream/kafka/keystream-2/2"


def test_listeners_from_the_environment_are_the_ones_advertised():
    """KEYSTREAM_LISTENERS overrides the file in the server; the advertised endpoints follow it."""
    env = {"KEYSTREAM_LISTENERS": "INTERNAL://:29092", "KEYSTREAM_LISTENER_SECURITY_PROTOCOL_MAP": "INTERNAL:SSL"}
    assert render_broker(CONFIGMAP, _pod(), environ=env)["advertised.listeners"] == f"INTERNAL://{HOST}:29092"


def test_default_listeners_when_the_configmap_has_none():
    assert render_broker({}, _pod(), environ={})["advertised.listeners"] == f"SSL://{HOST}:9092"


def test_the_rendered_file_is_a_valid_broker_config(tmp_path):
    path = write_properties(tmp_path / "run" / "server.properties", render_broker(CONFIGMAP, _pod(), environ={}),
                            "test")
    config = load_config(path, environ={})
    assert config.node_id == 2
    assert [str(lst) for lst in config.advertised_listeners] == [f"SSL://{HOST}:9092", f"SASL_SSL://{HOST}:9093"]
    assert config["health.listener"] == ":9095"


# ------------------------------------------------------------------------------------ registry render
def test_registry_substitutes_placeholders_only():
    props = {"listeners": "https://0.0.0.0:8081", "kafkastore.bootstrap.servers": "keystream-0.x:9092",
             "ssl.keystore.location": "/etc/keystream/tls/${POD_NAME}.pem"}
    out = render_registry(props, _pod("keystream-registry-5d8f9c7b6-x2x9z"))
    assert out == {**props, "ssl.keystore.location": "/etc/keystream/tls/keystream-registry-5d8f9c7b6-x2x9z.pem"}
    assert render_registry({"a": "b"}, None) == {"a": "b"}  # no POD_NAME needed without placeholders


# ------------------------------------------------------------------------------------ errors
def test_missing_pod_name():
    with pytest.raises(PodError, match="POD_NAME is not set.*fieldRef metadata.name"):
        pod_from_env({"POD_NAMESPACE": "kafka"})
    assert pod_from_env({}, required=False) is None


@pytest.mark.parametrize("name", ["keystream", "keystream-registry-5d8f9c7b6-x2x9z", "keystream-01", "kafka-x"])
def test_pod_name_without_ordinal(name):
    with pytest.raises(PodError, match=f"POD_NAME='{name}' has no StatefulSet ordinal"):
        render_broker(CONFIGMAP, pod_from_env({**POD_ENV, "POD_NAME": name}), environ={})


@pytest.mark.parametrize("env, message", [
    ({"POD_NAME": "Keystream-0"}, "POD_NAME='Keystream-0' is not a DNS label"),
    ({"POD_NAMESPACE": "kafka.prod"}, "POD_NAMESPACE='kafka.prod' is not a DNS label"),
    ({"KEYSTREAM_HEADLESS_SERVICE": "a_b"}, "KEYSTREAM_HEADLESS_SERVICE='a_b' is not a DNS label"),
    ({"KEYSTREAM_CLUSTER_DOMAIN": "cluster..local"}, "not a DNS name"),
])
def test_bad_names(env, message):
    with pytest.raises(PodError, match=message):
        pod_from_env({**POD_ENV, **env})


def test_missing_namespace():
    with pytest.raises(PodError, match="POD_NAMESPACE is not set"):
        render_broker(CONFIGMAP, pod_from_env({"POD_NAME": "keystream-0"}), environ={})


def test_unknown_placeholder():
    with pytest.raises(PodError, match=r"unknown placeholder \$\{POD_HOSTNAME\} in advertised.listeners"):
        render_broker({"advertised.listeners": "SSL://${POD_HOSTNAME}:9092"}, _pod(), environ={})


def test_placeholder_without_a_pod():
    with pytest.raises(PodError, match=r"uses \$\{POD_NAME\} but POD_NAME is not set"):
        render_registry({"x": "${POD_NAME}"}, None)


def test_bad_listeners_name_the_file():
    with pytest.raises(PodError, match="cm/server.properties: .*listeners"):
        render_broker({"listeners": "NOPE://:1"}, _pod(), environ={}, source="cm/server.properties")


def test_unreadable_config(tmp_path):
    with pytest.raises(PodError, match="does not exist: mount the ConfigMap there or set KEYSTREAM_CONFIG_DIR"):
        read_config(tmp_path / "server.properties")
    (tmp_path / "dir.properties").mkdir()
    with pytest.raises(PodError, match="it is a directory"):
        read_config(tmp_path / "dir.properties")
    bad = tmp_path / "bad.properties"
    bad.write_bytes(b"listeners=\xff\xfe\n")
    with pytest.raises(PodError, match=f"cannot read config file {bad}"):
        read_config(bad)


def test_unwritable_run_dir(tmp_path):
    blocker = tmp_path / "run"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(PodError, match="KEYSTREAM_RUN_DIR must be a writable directory"):
        write_properties(blocker / "server.properties", {"a": "b"}, "test")


# ------------------------------------------------------------------------------------ the file
def test_written_with_mode_0600_atomically(tmp_path):
    path = tmp_path / "run" / "server.properties"
    path.parent.mkdir()
    path.write_text("old")
    os.chmod(path, 0o644)
    props = {"listeners": "SSL://:9092", "odd": "a=b:c \\ d\n"}
    write_properties(path, props, "header line")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_properties(path) == props
    assert path.read_text().startswith("# header line\n")
    assert sorted(p.name for p in path.parent.iterdir()) == ["server.properties"]  # no temporary left


def test_prepare_renders_into_the_run_dir(tmp_path):
    (tmp_path / "cm").mkdir()
    (tmp_path / "cm" / "server.properties").write_text("listeners=SSL://:9092\nnode.id=5\n")
    path = prepare("broker", tmp_path / "cm", tmp_path / "run", POD_ENV)
    assert path == tmp_path / "run" / "server.properties"
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o700
    text = path.read_text()
    assert "node.id=2\n" in text and f"advertised.listeners=SSL://{HOST}:9092\n" in text
    assert "node.id=5 replaced by the ordinal" in text.splitlines()[0]


def test_pod_variables_are_not_passed_to_the_server():
    env = {**POD_ENV, "KEYSTREAM_RUN_DIR": "/r", "KEYSTREAM_CONFIG_DIR": "/c", "KEYSTREAM_HEADLESS_SERVICE": "h",
           "KEYSTREAM_CLUSTER_DOMAIN": "d", "KEYSTREAM_NUM_PARTITIONS": "3"}
    assert server_env(env) == {**POD_ENV, "KEYSTREAM_NUM_PARTITIONS": "3"}


# ------------------------------------------------------------------------------------ the command
def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    args = ["pod", "broker", "--config-dir", str(tmp_path), "--run-dir", str(tmp_path / "run")]
    result = runner.invoke(cli, args, env={"POD_NAME": None, "POD_NAMESPACE": "kafka"})
    assert result.exit_code == 1 and "does not exist" in result.output, result.output
    (tmp_path / "server.properties").write_text("listeners=SSL://:9092\n")
    result = runner.invoke(cli, args, env={"POD_NAME": None, "POD_NAMESPACE": "kafka"})
    assert result.exit_code == 1 and "Error: POD_NAME is not set" in result.output, result.output
    result = runner.invoke(cli, args, env={"POD_NAME": "keystream", "POD_NAMESPACE": "kafka"})
    assert result.exit_code == 1 and "has no StatefulSet ordinal" in result.output, result.output
    assert "Traceback" not in result.output


def _run_pod(role: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KEYSTREAM_", "POD_"))}
    return subprocess.run([sys.executable, "-m", "keystream", "pod", role, "--check"], capture_output=True,
                          text=True, timeout=60, env={**base, "KEYSTREAM_CONFIG_DIR": str(tmp_path / "cm"),
                                                      "KEYSTREAM_RUN_DIR": str(tmp_path / "run"), **env})


def test_exec_into_the_broker(tmp_path):
    """The real entrypoint: renders, then execs `keystream serve --config <rendered> --check`, which
    applies KEYSTREAM_* overrides itself and sees none of the pod's own variables."""
    (tmp_path / "cm").mkdir()
    (tmp_path / "cm" / "server.properties").write_text("listeners=PLAINTEXT://:9092\nhealth.listener=:9095\n")
    result = _run_pod("broker", tmp_path, **POD_ENV, KEYSTREAM_NUM_PARTITIONS="7",
                      KEYSTREAM_HEADLESS_SERVICE="keystream-headless")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "node.id=2" in lines and f"advertised.listeners=PLAINTEXT://{HOST}:9092" in lines
    assert "num.partitions=7" in lines and "health.listener=:9095" in lines
    assert "ignoring environment variable" not in result.stderr
    assert stat.S_IMODE((tmp_path / "run" / "server.properties").stat().st_mode) == 0o600


def test_exec_into_the_registry(tmp_path):
    (tmp_path / "cm").mkdir()
    (tmp_path / "cm" / "registry.properties").write_text(
        "listeners=http://0.0.0.0:8081\nlisteners.allow.insecure=true\nkafkastore.security.protocol=PLAINTEXT\n"
        "kafkastore.bootstrap.servers=keystream-0.keystream-headless.${POD_NAMESPACE}.svc.cluster.local:9092\n")
    result = _run_pod("registry", tmp_path, POD_NAME="keystream-registry-5d8f9c7b6-x2x9z", POD_NAMESPACE="kafka")
    assert result.returncode == 0, result.stderr
    assert "kafkastore.bootstrap.servers=keystream-0.keystream-headless.kafka.svc.cluster.local:9092" in \
        result.stdout.splitlines()
