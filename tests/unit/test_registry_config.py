"""The registry's properties: Confluent names, secure defaults, the broker's shared Props, and the
translation of ssl.client.authentication into the broker's TLS context builder."""

from __future__ import annotations

import pytest

from keystream.config_schema import BROKER_SCHEMA
from keystream.configdef import ConfigError
from keystream.registry.config import REGISTRY_SCHEMA, RegistryConfig, load_registry_config

KEYSTORE = {"ssl.keystore.location": "/etc/registry.pem"}


def test_defaults_are_https_on_localhost_with_basic_auth():
    config = RegistryConfig(KEYSTORE)
    assert [str(lst) for lst in config.http_listeners] == ["https://127.0.0.1:8081"]
    assert config["authentication.method"] == "BASIC"
    assert config["kafkastore.topic"] == "_schemas" and config["kafkastore.security.protocol"] == "SSL"
    assert config["schema.compatibility.level"] == "backward"


def test_ldap_and_acl_props_are_the_brokers_own():
    broker = {p.name: p for p in BROKER_SCHEMA}
    shared = [p for p in REGISTRY_SCHEMA if p.name.startswith("ldap.") or p.name == "super.users"]
    assert shared and all(p is broker[p.name] for p in shared)
    assert {n for n in broker if n.startswith("ldap.")} <= {p.name for p in REGISTRY_SCHEMA}


def test_plain_http_is_refused_unless_allowed():
    with pytest.raises(ConfigError, match="listeners.allow.insecure"):
        RegistryConfig({"listeners": "http://127.0.0.1:8081"})
    config = RegistryConfig({"listeners": "http://127.0.0.1:8081", "listeners.allow.insecure": "true"})
    assert config.http_listeners[0].scheme == "http"


@pytest.mark.parametrize("listeners", ["ftp://h:1", "https://h", "https://h:99999", "https://h:1/path", "h:1"])
def test_malformed_listeners_name_the_property(listeners):
    with pytest.raises(ConfigError, match="configuration listeners"):
        RegistryConfig({**KEYSTORE, "listeners": listeners})


def test_https_needs_a_keystore():
    with pytest.raises(ConfigError, match="ssl.keystore.location"):
        RegistryConfig({})


@pytest.mark.parametrize(("confluent", "broker"), [("NONE", "none"), ("REQUESTED", "requested"),
                                                   ("REQUIRED", "required")])
def test_client_authentication_maps_to_the_brokers_ssl_client_auth(confluent, broker):
    config = RegistryConfig({**KEYSTORE, "ssl.client.authentication": confluent})
    assert config.tls_properties()["ssl.client.auth"] == broker


def test_unknown_property_fails_with_a_hint():
    with pytest.raises(ConfigError, match="did you mean kafkastore.topic"):
        RegistryConfig({**KEYSTORE, "kafkastore.topics": "x"})


def test_file_then_env_then_overrides(tmp_path):
    path = tmp_path / "registry.properties"
    path.write_text("ssl.keystore.location=/k.pem\nkafkastore.topic=from-file\nacl.refresh.ms=7\n")
    env = {"KEYSTREAM_REGISTRY_KAFKASTORE_TOPIC": "from-env", "KEYSTREAM_SSL_KEYSTORE_LOCATION": "/broker.pem"}
    config = load_registry_config(path, {"acl.refresh.ms": "9"}, environ=env)
    assert (config["kafkastore.topic"], config["acl.refresh.ms"]) == ("from-env", 9)
    assert config["ssl.keystore.location"] == "/k.pem"  # the broker's KEYSTREAM_* variables do not apply


def test_cli_check_prints_values_and_hides_passwords(tmp_path):
    from click.testing import CliRunner  # noqa: PLC0415

    from keystream.cli import cli  # noqa: PLC0415

    path = tmp_path / "registry.properties"
    path.write_text("ssl.keystore.location=/k.pem\nkafkastore.ssl.key.password=s3cret\n")
    result = CliRunner().invoke(cli, ["registry", "serve", "--config", str(path), "--check",
                                      "--override", "kafkastore.topic=mine"])
    assert result.exit_code == 0, result.output
    assert "kafkastore.topic=mine" in result.output and "s3cret" not in result.output
    path.write_text("listeners=http://127.0.0.1:8081\n")
    refused = CliRunner().invoke(cli, ["registry", "serve", "--config", str(path)])
    assert refused.exit_code == 1 and "listeners.allow.insecure" in refused.output


STORE_CERT = {"kafkastore.ssl.keystore.location": "/etc/registry-client.pem"}


@pytest.mark.parametrize("url", ["nonsense", "https://broker:9094", "broker:99999", "::1:9094", ":9094", "broker:0"])
def test_bad_admin_url_names_the_property(url):
    with pytest.raises(ConfigError, match="configuration admin.url"):
        RegistryConfig({**KEYSTORE, **STORE_CERT, "admin.url": url})


@pytest.mark.parametrize("url", ["broker.example:9094", "[::1]:9094"])
def test_admin_url_needs_the_store_client_certificate(url):
    assert RegistryConfig({**KEYSTORE, **STORE_CERT, "admin.url": url})["admin.url"] == url
    with pytest.raises(ConfigError, match="Missing required configuration kafkastore.ssl.keystore.location"):
        RegistryConfig({**KEYSTORE, "admin.url": url})
