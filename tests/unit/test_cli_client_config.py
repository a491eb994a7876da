"""--command-config: Java client properties translated for librdkafka."""

import pytest

from keystream.client_config import (
    ClientConfigError,
    build_client_config,
    parse_assignment,
    parse_config_list,
    parse_jaas,
    to_librdkafka,
)


def test_librdkafka_names_pass_through_unchanged():
    props = {"security.protocol": "SSL", "ssl.ca.location": "/ca.pem", "enable.idempotence": "true",
             "no.such.setting": "x"}
    conf, warnings = to_librdkafka(props)
    assert conf == props and warnings == []


def test_pem_truststore_and_keystore():
    conf, _ = to_librdkafka({
        "ssl.truststore.type": "PEM", "ssl.truststore.location": "/ca.pem",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": "/client.pem", "ssl.key.password": "pw",
    })
    assert conf == {"ssl.ca.location": "/ca.pem", "ssl.certificate.location": "/client.pem",
                    "ssl.key.location": "/client.pem", "ssl.key.password": "pw"}


def test_store_type_guessed_from_extension():
    conf, _ = to_librdkafka({"ssl.keystore.location": "/c.p12", "ssl.keystore.password": "pw",
                             "ssl.truststore.location": "/ca.crt"})
    assert conf == {"ssl.keystore.location": "/c.p12", "ssl.keystore.password": "pw", "ssl.ca.location": "/ca.crt"}


@pytest.mark.parametrize("props", [
    {"ssl.truststore.location": "/t.jks"},
    {"ssl.truststore.location": "/t", "ssl.truststore.type": "PKCS12"},
    {"ssl.keystore.location": "/k.jks"},
])
def test_stores_librdkafka_cannot_read(props):
    with pytest.raises(ClientConfigError, match="librdkafka"):
        to_librdkafka(props)


def test_inline_pem_names_and_endpoint_identification():
    conf, _ = to_librdkafka({"ssl.truststore.certificates": "PEM", "ssl.keystore.key": "KEY",
                             "ssl.keystore.certificate.chain": "CHAIN", "ssl.endpoint.identification.algorithm": ""})
    assert conf == {"ssl.ca.pem": "PEM", "ssl.key.pem": "KEY", "ssl.certificate.pem": "CHAIN",
                    "ssl.endpoint.identification.algorithm": "none"}


def test_java_only_properties_are_dropped_with_a_warning():
    conf, warnings = to_librdkafka({"key.serializer": "x", "ssl.enabled.protocols": "TLSv1.3", "client.id": "c"})
    assert conf == {"client.id": "c"}
    assert len(warnings) == 2 and any("key.serializer" in w for w in warnings)


def test_jaas_plain_and_scram():
    text = ('org.apache.kafka.common.security.scram.ScramLoginModule required\n'
            '  username="alice"  password="p@ss \\"quoted\\" w;rd";')
    conf, _ = to_librdkafka({"sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": text})
    assert conf == {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": 'p@ss "quoted" w;rd'}


def test_jaas_kerberos():
    text = ('com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true '
            'keyTab="/etc/client.keytab" principal="client@EXAMPLE.COM" serviceName=kafka;')
    conf, _ = to_librdkafka({"sasl.jaas.config": text})
    assert conf == {"sasl.kerberos.keytab": "/etc/client.keytab", "sasl.kerberos.principal": "client@EXAMPLE.COM",
                    "sasl.kerberos.service.name": "kafka"}


def test_jaas_errors():
    with pytest.raises(ClientConfigError):
        parse_jaas("username=alice")
    with pytest.raises(ClientConfigError, match="not supported"):
        to_librdkafka({"sasl.jaas.config": "x.OAuthBearerLoginModule required;"})


def test_bootstrap_precedence(tmp_path):
    path = tmp_path / "client.properties"
    path.write_text("bootstrap.servers=file:9092\nsecurity.protocol=PLAINTEXT\n")
    assert build_client_config(None, None)[0] == {"bootstrap.servers": "127.0.0.1:9092"}
    assert build_client_config(None, path)[0]["bootstrap.servers"] == "file:9092"
    assert build_client_config("flag:9092", path)[0]["bootstrap.servers"] == "flag:9092"
    conf, _ = build_client_config(None, path, {"security.protocol": "SSL"})
    assert conf["security.protocol"] == "SSL"


def test_missing_command_config(tmp_path):
    with pytest.raises(ClientConfigError, match="does not exist"):
        build_client_config(None, tmp_path / "nope.properties")


def test_parse_assignment():
    assert parse_assignment("a=b=c") == ("a", "b=c")
    assert parse_assignment(" k =") == ("k", "")
    for bad in ("novalue", "=v"):
        with pytest.raises(ValueError):
            parse_assignment(bad)


def test_parse_config_list():
    assert parse_config_list("retention.ms=1000,cleanup.policy=[compact,delete],x=y") == {
        "retention.ms": "1000", "cleanup.policy": "compact,delete", "x": "y"}
    assert parse_config_list("a=1,") == {"a": "1"}
    with pytest.raises(ValueError):
        parse_config_list("a=[1,2")
    with pytest.raises(ValueError):
        parse_config_list("a")
