"""SASL listener configuration: per-listener overrides (Kafka's `listener.name.<name>.` prefix), the
start-up checks on SASL listeners, SASL_SSL's own client-auth default and static groups."""

from __future__ import annotations

import pytest

from keystream.auth.principal import Principal
from keystream.auth.static_groups import parse_static_groups
from keystream.broker.server import client_auth
from keystream.config import Config, ConfigError, load_config

BASE = {"listeners": "SSL://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093,SASL_PLAINTEXT://127.0.0.1:9094"}


def test_defaults():
    c = Config(BASE)
    assert c.for_listener("SASL_SSL", "sasl.enabled.mechanisms") == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    assert c["connection.failed.authentication.delay.ms"] == 100
    assert c["connections.max.reauth.ms"] == 0
    assert c["sasl.server.max.receive.size"] == 524288


def test_listener_override_applies_to_that_listener_only():
    c = Config({**BASE, "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "listener.name.SASL_PLAINTEXT.connections.max.reauth.ms": "60000"})
    assert c.for_listener("SASL_SSL", "sasl.enabled.mechanisms") == ["SCRAM-SHA-512"]
    assert c.for_listener("sasl_plaintext", "sasl.enabled.mechanisms") == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    assert c.for_listener("SASL_PLAINTEXT", "connections.max.reauth.ms") == 60000
    assert c.for_listener("SASL_SSL", "connections.max.reauth.ms") == 0
    assert "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512" in c.describe()


def test_listener_override_from_the_environment(tmp_path):
    c = load_config(None, {"listeners": BASE["listeners"]},
                    environ={"KEYSTREAM_LISTENER_NAME_SASL_SSL_SASL_ENABLED_MECHANISMS": "SCRAM-SHA-256"})
    assert c.for_listener("SASL_SSL", "sasl.enabled.mechanisms") == ["SCRAM-SHA-256"]


@pytest.mark.parametrize("props, message", [
    ({"listener.name.nope.sasl.enabled.mechanisms": "PLAIN"}, "there is no listener NOPE"),
    ({"listener.name.sasl_ssl.log.dirs": "/x"}, "log.dirs cannot be set per listener"),
    ({"listener.name.sasl_ssl.no.such.thing": "1"}, "Unknown configuration 'listener.name.sasl_ssl.no.such.thing'"),
    ({"listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-1"}, "'SCRAM-SHA-1' is not one of"),
    ({"listener.name.sasl_ssl.sasl.enabled.mechanisms": ""},
     "listener.name.sasl_ssl.sasl.enabled.mechanisms: SASL listener SASL_SSL needs a mechanism"),
    ({"sasl.enabled.mechanisms": "PLAIN"}, "PLAIN on the SASL_PLAINTEXT listener SASL_PLAINTEXT"),
    ({"principal.groups": "devs"}, "configuration principal.groups: 'devs' is not of the form"),
    ({"principal.groups": "devs=alice"}, "principal 'alice' is not of the form Type:name"),
])
def test_bad_sasl_configuration_fails_naming_the_property(props, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Config({**BASE, **props})


def test_plain_on_sasl_plaintext_when_explicitly_allowed():
    for allow in ({"sasl.mechanism.plain.allow.insecure": "true"},
                  {"listener.name.sasl_plaintext.sasl.mechanism.plain.allow.insecure": "true"}):
        c = Config({**BASE, "sasl.enabled.mechanisms": "PLAIN", **allow})
        assert c.for_listener("SASL_PLAINTEXT", "sasl.enabled.mechanisms") == ["PLAIN"]
    assert Config({**BASE, "listener.name.sasl_ssl.sasl.enabled.mechanisms": "PLAIN"})  # under TLS: fine


def test_sasl_ssl_asks_for_no_client_certificate_unless_told(tmp_path):
    c = Config(BASE)
    ssl, sasl_ssl = (lst for lst in c.listeners if lst.name in ("SSL", "SASL_SSL"))
    assert (client_auth(c, ssl), client_auth(c, sasl_ssl)) == ("required", "none")  # KIP-684
    c = Config({**BASE, "listener.name.sasl_ssl.ssl.client.auth": "requested", "ssl.client.auth": "none"})
    assert (client_auth(c, ssl), client_auth(c, sasl_ssl)) == ("none", "requested")


def test_static_groups():
    groups = parse_static_groups("devs=User:alice|User:bob; ops=User:CN=carol,O=acme|User:alice;;")
    assert groups == {
        Principal("User", "alice"): (Principal("Group", "devs"), Principal("Group", "ops")),
        Principal("User", "bob"): (Principal("Group", "devs"),),
        Principal("User", "CN=carol,O=acme"): (Principal("Group", "ops"),),
    }
    assert parse_static_groups(None) == {}
