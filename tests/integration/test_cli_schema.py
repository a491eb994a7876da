"""`keystream schema` against a real broker and registry process.

Every command runs as a subprocess, so exit codes and the one-line errors are what a user sees;
what the CLI registers is read back with confluent-kafka's SchemaRegistryClient, so the CLI cannot
agree only with itself. One broker (mTLS + SASL_SSL/SCRAM) and one registry serve the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation
from confluent_kafka.schema_registry import SchemaRegistryClient

from keystream.cli_schema import client_conf_from
from keystream.client_config import ClientConfigError
from tests.fixtures.broker import free_port
from tests.fixtures.registry import RegistryProcess
from tests.fixtures.sasl import scram_user
from tests.fixtures.sasl_acls import allow_topic_and_group
from tests.fixtures.waiting import wait_for
from tests.fixtures.wire import unique_name

pytestmark = pytest.mark.keystream_only
CLI_TIMEOUT = 60


def record(name: str, *fields: dict) -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "com.acme", "fields": list(fields)})


ORDER_V1 = record("Order", {"name": "id", "type": "long"})
ORDER_V2 = record("Order", {"name": "id", "type": "long"}, {"name": "note", "type": "string", "default": ""})
ORDER_BAD = record("Order", {"name": "id", "type": "long"}, {"name": "qty", "type": "int"})  # no default


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    return module_broker_factory(tls=True, sasl="SCRAM-SHA-512")


@pytest.fixture(scope="module")
def registry(broker, tmp_path_factory):
    reg = RegistryProcess(tmp_path_factory.mktemp("registry"), broker).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def admin_file(registry, broker, tmp_path_factory) -> Path:
    """The registry client file `keystream up` writes: URL, CA, admin certificate (a registry super user)."""
    tls = broker.tls
    path = tmp_path_factory.mktemp("cli") / "schema-registry.properties"
    path.write_text(f"schema.registry.url={registry.url}\nschema.registry.ssl.ca.location={tls.ca_cert}\n"
                    f"schema.registry.ssl.certificate.location={tls.admin.cert}\n"
                    f"schema.registry.ssl.key.location={tls.admin.key}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sr(admin_file) -> list[str]:
    return ["--registry-config", str(admin_file)]


@pytest.fixture(scope="module")
def client(registry) -> SchemaRegistryClient:
    return SchemaRegistryClient(registry.client_conf())


def ks(*args: str, input: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTREAM_")}
    return subprocess.run([sys.executable, "-m", "keystream", "schema", *args], input=input.encode(),
                          capture_output=True, timeout=CLI_TIMEOUT, env=env, check=False)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr.decode()}"
    return proc.stdout.decode()


def failed(proc: subprocess.CompletedProcess, code: int = 1) -> str:
    """The error of a failed command: exit `code`, one line on stderr, nothing on stdout."""
    err = proc.stderr.decode()
    assert proc.returncode == code, f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {err}"
    if code == 1:
        assert err.startswith("Error: ") and err.count("\n") == 1, err
    return err


def schema_file(tmp_path: Path, text: str, name: str = "schema.avsc") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_register_get_list_agree_with_confluent_client(sr, client, tmp_path):
    subject = unique_name("orders") + "-value"
    f = schema_file(tmp_path, ORDER_V1)
    out = ok(ks("register", "--subject", subject, "--schema-file", f, *sr))
    assert out.startswith(f"Registered subject {subject} version 1, schema id "), out
    # the same schema, reformatted, keeps its id and version
    again = json.loads(ok(ks("register", "--subject", subject, "--schema-file", "-", "--output", "json", *sr,
                             input=json.dumps(json.loads(ORDER_V1), indent=4))))
    latest = client.get_latest_version(subject)
    assert again == {"subject": subject, "version": 1, "id": latest.schema_id}

    text = ok(ks("get", "--subject", subject, *sr))
    head, _, body = text.partition("\n")
    assert head == f"subject {subject}\tversion 1\tid {latest.schema_id}\tschemaType AVRO"
    assert json.loads(body) == json.loads(ORDER_V1)
    by_id = json.loads(ok(ks("get", "--id", str(latest.schema_id), "--output", "json", *sr)))
    assert by_id["id"] == latest.schema_id
    assert json.loads(by_id["schema"]) == json.loads(client.get_schema(latest.schema_id).schema_str)
    by_version = json.loads(ok(ks("get", "--subject", subject, "--version", "1", "--output", "json", *sr)))
    assert (by_version["subject"], by_version["version"], by_version["id"]) == (subject, 1, latest.schema_id)

    assert subject in ok(ks("list", *sr)).splitlines()
    prefix = subject[:-len("-value")]
    assert json.loads(ok(ks("list", "--prefix", prefix, "--output", "json", *sr))) == [subject]
    assert ok(ks("list", "--prefix", prefix + "-nothing", *sr)).strip() == ""


def test_reference_to_a_type_registered_elsewhere(sr, client, tmp_path):
    base = unique_name("addr")
    address = json.dumps({"type": "record", "name": "Address", "namespace": "com.acme",
                          "fields": [{"name": "street", "type": "string"}]})
    ok(ks("register", "--subject", base, "--schema-file", schema_file(tmp_path, address, "a.avsc"), *sr))
    customer = record("Customer", {"name": "home", "type": "com.acme.Address"})
    subject = unique_name("customers") + "-value"
    args = ("--subject", subject, "--schema-file", schema_file(tmp_path, customer, "c.avsc"))
    refused = failed(ks("register", *args, *sr))
    assert "error_code 42201" in refused
    ok(ks("register", *args, "--reference", f"com.acme.Address={base}:1", *sr))
    got = json.loads(ok(ks("get", "--subject", subject, "--output", "json", *sr)))
    assert got["references"] == [{"name": "com.acme.Address", "subject": base, "version": 1}]
    assert client.get_latest_version(subject).schema.references[0].subject == base
    text = ok(ks("get", "--subject", subject, *sr))
    assert f"references com.acme.Address={base}:1" in text.splitlines()[0]


def test_compat_prints_compatible_or_the_messages(sr, tmp_path):
    subject = unique_name("compat") + "-value"
    ok(ks("register", "--subject", subject, "--schema-file", schema_file(tmp_path, ORDER_V1), *sr))
    good = schema_file(tmp_path, ORDER_V2, "v2.avsc")
    bad = schema_file(tmp_path, ORDER_BAD, "bad.avsc")
    assert ok(ks("compat", "--subject", subject, "--schema-file", good, *sr)) == "compatible\n"
    assert ok(ks("compat", "--subject", subject, "--schema-file", good, "--version", "1", *sr)) == "compatible\n"
    proc = ks("compat", "--subject", subject, "--schema-file", bad, *sr)
    lines = proc.stdout.decode().splitlines()
    assert proc.returncode == 1 and lines[0] == "incompatible" and len(lines) >= 2, proc
    assert "qty" in "\n".join(lines[1:])
    proc = ks("compat", "--subject", subject, "--schema-file", bad, "--output", "json", *sr)
    answer = json.loads(proc.stdout)
    assert proc.returncode == 1 and answer["is_compatible"] is False and answer["messages"], answer
    assert "error_code 40402" in failed(ks("compat", "--subject", subject, "--schema-file", good, "--version", "9", *sr))


def test_delete_soft_then_permanent(sr, client, tmp_path):
    subject = unique_name("gone") + "-value"
    ok(ks("register", "--subject", subject, "--schema-file", schema_file(tmp_path, ORDER_V1), *sr))
    ok(ks("register", "--subject", subject, "--schema-file", schema_file(tmp_path, ORDER_V2, "v2.avsc"), *sr))
    assert ok(ks("delete", "--subject", subject, "--version", "1", *sr)) == \
        f"Soft-deleted subject {subject} version(s) 1.\n"
    assert "error_code 40402" in failed(ks("get", "--subject", subject, "--version", "1", *sr))
    assert "error_code 40405" in failed(ks("delete", "--subject", subject, "--permanent", *sr))
    gone = json.loads(ok(ks("delete", "--subject", subject, "--output", "json", *sr)))
    assert gone == {"subject": subject, "versions": [2], "permanent": False}
    assert subject not in ok(ks("list", *sr)).splitlines()
    assert subject in ok(ks("list", "--deleted", *sr)).splitlines()
    out = ok(ks("delete", "--subject", subject, "--permanent", *sr))
    assert out.startswith(f"Permanently deleted subject {subject} version(s) "), out
    assert subject not in ok(ks("list", "--deleted", *sr)).splitlines()
    assert subject not in client.get_subjects(deleted=True)


def test_errors_are_one_line_with_the_registry_error_code(sr, tmp_path):
    missing = unique_name("missing")
    err = failed(ks("get", "--subject", missing, *sr))
    assert f"cannot read '{missing}' version latest" in err and "error_code 40401" in err, err
    assert "error_code 40403" in failed(ks("get", "--id", "999999", *sr))
    bad = schema_file(tmp_path, '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}')
    assert "error_code 42201" in failed(ks("register", "--subject", unique_name("bad"), "--schema-file", bad, *sr))
    port = free_port()
    err = failed(ks("list", "--registry-url", f"https://127.0.0.1:{port}", *sr))
    assert f"cannot reach the schema registry at https://127.0.0.1:{port}" in err
    failed(ks("get", *sr), code=2)  # neither --subject nor --id
    failed(ks("register", "--subject", "s", "--schema-file", bad, "--reference", "x=y", *sr), code=2)
    assert "does not exist" in failed(ks("list", "--registry-config", str(tmp_path / "nope.properties")))


def test_basic_user_gets_what_topic_acls_allow(registry, broker, tmp_path):
    """SCRAM credentials in basic.auth.user.info, Java names for the CA, the URL from --registry-url:
    the registry authenticates the user and authorizes by the topic ACLs of the subject."""
    user, password = unique_name("carol"), "carol-secret-password"
    scram_user(broker, user, password)
    conf = tmp_path / "carol.properties"
    conf.write_text("bootstrap.servers=ignored:1\nschema.registry.url=https://127.0.0.1:1\n"
                    f"schema.registry.ssl.truststore.location={broker.tls.ca_cert}\n"
                    f"basic.auth.credentials.source=USER_INFO\nbasic.auth.user.info={user}:{password}\n",
                    encoding="utf-8")
    mine = ["--registry-url", registry.url, "--registry-config", str(conf)]
    topic = unique_name("carol-orders")
    args = ("register", "--subject", f"{topic}-value", "--schema-file", schema_file(tmp_path, ORDER_V1), *mine)
    assert "error_code 40301" in failed(ks(*args))
    allow_topic_and_group(broker, f"User:{user}", topic, "unused", AclOperation.WRITE)
    wait_for(lambda: ks(*args).returncode == 0, 30, message="the registry to see the new ACL")
    assert ok(ks("list", *mine)).splitlines() == [f"{topic}-value"]  # only what she may describe
    wrong = tmp_path / "wrong.properties"
    wrong.write_text(conf.read_text().replace(password, "wrong"), encoding="utf-8")
    assert "error_code 401" in failed(ks("list", "--registry-url", registry.url, "--registry-config", str(wrong)))


def test_registry_settings_take_confluent_client_names():
    props = {"bootstrap.servers": "b:9092", "schema.registry.url": "https://r:8081",
             "schema.registry.ssl.truststore.location": "/ca.pem", "schema.registry.ssl.keystore.location": "/me.pem",
             "schema.registry.ssl.key.password": "pw", "basic.auth.user.info": "u:p", "schema.registry.foo": "x"}
    conf, warnings = client_conf_from(props)
    assert conf == {"url": "https://r:8081", "ssl.ca.location": "/ca.pem", "ssl.certificate.location": "/me.pem",
                    "ssl.key.location": "/me.pem", "ssl.key.password": "pw", "basic.auth.user.info": "u:p"}
    assert warnings == ["ignoring schema.registry.foo (not a setting keystream schema uses)"]
    url_creds, _ = client_conf_from({"schema.registry.url": "https://u:p@r", "basic.auth.credentials.source": "URL",
                                      "basic.auth.user.info": "ignored:x"})
    assert url_creds == {"url": "https://u:p@r"}
    with pytest.raises(ClientConfigError, match="SASL_INHERIT"):
        client_conf_from({"basic.auth.credentials.source": "SASL_INHERIT"})
    with pytest.raises(ClientConfigError, match="only PEM"):
        client_conf_from({"schema.registry.ssl.truststore.location": "/t.jks",
                           "schema.registry.ssl.truststore.type": "JKS"})
