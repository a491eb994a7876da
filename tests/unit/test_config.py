"""Broker config: schema defaults, types, validation, env overrides, listeners, secrets."""

import logging

import pytest

from keystream.config import BROKER_SCHEMA, Config, ConfigError, env_name, load_config
from keystream.configdef import LONG_MAX, Password, Prop, Validator, at_least
from keystream.listeners import Listener


def load(text: str | None = None, tmp_path=None, environ=None, overrides=None) -> Config:
    path = None
    if text is not None:
        path = tmp_path / "server.properties"
        path.write_text(text, encoding="utf-8")
    return load_config(path, overrides, environ=environ or {})


def test_defaults_cover_every_property():
    config = load()
    assert set(config) == {prop.name for prop in BROKER_SCHEMA}
    assert config["node.id"] == 1
    assert config["num.partitions"] == 1
    assert config["auto.create.topics.enable"] is False
    assert config["delete.topic.enable"] is True
    assert config["message.max.bytes"] == 1048588
    assert config["socket.request.max.bytes"] == 104857600
    assert config["log.segment.bytes"] == 1073741824
    assert config["log.retention.hours"] == 168
    assert config["log.retention.ms"] is None
    assert config["log.retention.bytes"] == -1
    assert config["log.flush.interval.messages"] == LONG_MAX
    assert config["log.flush.interval.ms"] is None
    assert config["log.cleanup.policy"] == ["delete"]
    assert config["log.cleaner.min.cleanable.ratio"] == 0.5
    assert config["log.message.timestamp.type"] == "CreateTime"
    assert config["offsets.topic.num.partitions"] == 50
    assert config["group.initial.rebalance.delay.ms"] == 3000
    assert config["log.dirs"] == ["./.keystream/data"]


def test_config_is_a_read_only_mapping():
    config = load()
    with pytest.raises(TypeError):
        config["num.partitions"] = 3  # type: ignore[index]
    assert len(config) == len(BROKER_SCHEMA)
    assert config.get("no.such.thing") is None
    assert config.is_default("num.partitions")


def test_file_values_are_typed(tmp_path):
    config = load(
        "num.partitions=3\nlog.retention.ms=1000\nlog.cleaner.enable=FALSE\n"
        "log.cleaner.min.cleanable.ratio=0.25\nlog.cleanup.policy=compact, delete\n"
        "log.dirs=/a, /b\n",
        tmp_path,
    )
    assert config["num.partitions"] == 3
    assert config["log.retention.ms"] == 1000
    assert config["log.cleaner.enable"] is False
    assert config["log.cleaner.min.cleanable.ratio"] == 0.25
    assert config["log.cleanup.policy"] == ["compact", "delete"]
    assert config["log.dirs"] == ["/a", "/b"]
    assert config.log_dirs == ["/a", "/b"]
    assert not config.is_default("num.partitions")


def test_log_dirs_falls_back_to_log_dir(tmp_path):
    assert load("log.dir=/var/data\n", tmp_path)["log.dirs"] == ["/var/data"]


def test_broker_id_is_an_alias_of_node_id(tmp_path):
    assert load("broker.id=4\n", tmp_path)["node.id"] == 4
    assert load("broker.id=4\nnode.id=4\n", tmp_path).node_id == 4


def test_conflicting_node_id_and_broker_id(tmp_path):
    with pytest.raises(ConfigError, match="node.id"):
        load("broker.id=4\nnode.id=5\n", tmp_path)


def test_unknown_property_is_named_with_a_hint(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown configuration 'num\.partitons' \(did you mean num\.partitions\?\)"):
        load("num.partitons=3\n", tmp_path)


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("num.partitions=three", "num.partitions"),
        ("num.partitions=0", "num.partitions"),
        ("num.partitions=1.5", "num.partitions"),
        ("num.partitions=2147483648", "num.partitions"),
        ("log.retention.bytes=9223372036854775808", "log.retention.bytes"),
        ("offsets.topic.replication.factor=40000", "offsets.topic.replication.factor"),
        ("auto.create.topics.enable=yes", "auto.create.topics.enable"),
        ("log.cleaner.min.cleanable.ratio=1.5", "log.cleaner.min.cleanable.ratio"),
        ("log.cleaner.min.cleanable.ratio=nan", "log.cleaner.min.cleanable.ratio"),
        ("log.cleanup.policy=delete,shred", "log.cleanup.policy"),
        ("log.cleanup.policy=delete,,compact", "log.cleanup.policy"),
        ("log.message.timestamp.type=createtime", "log.message.timestamp.type"),
        ("socket.request.max.bytes=", "socket.request.max.bytes"),
        ("listeners=PLAINTEXT://127.0.0.1", "listeners"),
        ("listeners=PLAINTEXT://127.0.0.1:99999", "listeners"),
        ("listeners=FOO://127.0.0.1:9092", "listeners"),
        ("listener.security.protocol.map=FOO:TLS", "listener.security.protocol.map"),
        ("group.min.session.timeout.ms=10000\ngroup.max.session.timeout.ms=5000", "group.max.session.timeout.ms"),
    ],
)
def test_malformed_values_name_the_property(tmp_path, line, name):
    with pytest.raises(ConfigError) as info:
        load(line + "\n", tmp_path)
    assert name in str(info.value)


def test_empty_value_of_nullable_property_means_unset(tmp_path):
    assert load("log.retention.ms=\n", tmp_path)["log.retention.ms"] is None


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/server.properties", environ={})


def test_unparseable_file(tmp_path):
    with pytest.raises(ConfigError, match="server.properties"):
        load("bad=\\uZZZZ\n", tmp_path)


def test_env_name():
    assert env_name("log.dirs") == "KEYSTREAM_LOG_DIRS"
    assert env_name("log.retention.check.interval.ms") == "KEYSTREAM_LOG_RETENTION_CHECK_INTERVAL_MS"


def test_env_overrides_file_and_overrides_win(tmp_path):
    environ = {"KEYSTREAM_LOG_DIRS": "/env", "KEYSTREAM_NUM_PARTITIONS": "4", "PATH": "/bin"}
    config = load("log.dirs=/file\nnum.partitions=2\n", tmp_path, environ, overrides={"num.partitions": 6})
    assert config["log.dirs"] == ["/env"]
    assert config["num.partitions"] == 6


def test_env_alias_and_malformed_env(tmp_path):
    assert load(environ={"KEYSTREAM_BROKER_ID": "9"}).node_id == 9
    with pytest.raises(ConfigError, match="num.partitions"):
        load(environ={"KEYSTREAM_NUM_PARTITIONS": "many"})


def test_unknown_env_var_is_ignored_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        load(environ={"KEYSTREAM_NO_SUCH_SETTING": "1"})
    assert "KEYSTREAM_NO_SUCH_SETTING" in caplog.text


def test_unknown_override_fails():
    with pytest.raises(ConfigError, match="overrides: Unknown configuration 'bogus'"):
        load(overrides={"bogus": "1"})


def test_typed_overrides():
    config = load(overrides={"num.partitions": 3, "log.dirs": ["/x"], "log.cleaner.enable": False})
    assert config["num.partitions"] == 3 and config["log.dirs"] == ["/x"] and config["log.cleaner.enable"] is False
    with pytest.raises(ConfigError, match="num.partitions"):
        load(overrides={"num.partitions": True})


def test_effective_retention_and_roll():
    assert load().log_retention_ms == 168 * 3_600_000
    assert load(overrides={"log.retention.minutes": "5"}).log_retention_ms == 300_000
    assert load(overrides={"log.retention.minutes": "5", "log.retention.ms": "10"}).log_retention_ms == 10
    assert load(overrides={"log.retention.hours": "-1"}).log_retention_ms == -1
    assert load().log_roll_ms == 168 * 3_600_000
    assert load(overrides={"log.roll.ms": "1000"}).log_roll_ms == 1000


def test_default_listeners():
    config = load()
    expected = [Listener("SSL", "127.0.0.1", 9092, "SSL")]  # no plaintext listener unless configured
    assert config.listeners == expected
    assert config.advertised_listeners == expected
    assert config["advertised.listeners"] == ["SSL://127.0.0.1:9092"]
    assert config.protocol_map == {p: p for p in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")}


def test_custom_listeners_and_protocol_map(tmp_path):
    config = load(
        "listeners=INTERNAL://0.0.0.0:9092, external://[::1]:9093,SSL://:9094\n"
        "advertised.listeners=INTERNAL://broker-0.svc:9092,EXTERNAL://[::1]:9093,SSL://kafka.example:443\n"
        "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL,SSL:SSL\n",
        tmp_path,
    )
    assert config.listeners == [
        Listener("INTERNAL", "0.0.0.0", 9092, "PLAINTEXT"),
        Listener("EXTERNAL", "::1", 9093, "SASL_SSL"),
        Listener("SSL", "", 9094, "SSL"),
    ]
    assert [str(lst) for lst in config.advertised_listeners] == [
        "INTERNAL://broker-0.svc:9092", "EXTERNAL://[::1]:9093", "SSL://kafka.example:443",
    ]


def test_advertised_defaults_replace_empty_host(tmp_path, monkeypatch):
    monkeypatch.setattr("keystream.listeners.socket.getfqdn", lambda: "node1.example")
    config = load("listeners=PLAINTEXT://:9092\n", tmp_path)
    assert config.listeners[0].host == ""
    assert config.advertised_listeners == [Listener("PLAINTEXT", "node1.example", 9092, "PLAINTEXT")]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("listeners=PLAINTEXT://0.0.0.0:9092\n", "advertised.listeners"),
        ("listeners=PLAINTEXT://a:9092\nadvertised.listeners=SSL://a:9093\n", "not in listeners"),
        ("listeners=PLAINTEXT://a:9092,PLAINTEXT://a:9093\n", "used twice"),
        ("listeners=PLAINTEXT://a:9092,SSL://a:9092\n", "port 9092"),
        ("listeners=PLAINTEXT://::1:9092\n", "brackets"),
        ("listeners=\n", "listeners"),
        ("listeners=localhost:9092\n", "NAME://host:port"),
    ],
)
def test_bad_listeners(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=needle):
        load(text, tmp_path)


def test_ephemeral_ports_may_repeat(tmp_path):
    config = load("listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0\n", tmp_path)
    assert [lst.port for lst in config.listeners] == [0, 0]


SECRET_SCHEMA = (
    Prop("ssl.key.password", "password", None, "A secret."),
    Prop("retries", "int", 3, "A number.", at_least(0)),
)


def test_passwords_are_masked_everywhere():
    config = Config({"ssl.key.password": "s3cret"}, schema=SECRET_SCHEMA)
    value = config["ssl.key.password"]
    assert isinstance(value, Password) and value.value == "s3cret"
    assert "s3cret" not in repr(config)
    assert "s3cret" not in str(value) and "s3cret" not in repr(value)
    assert "s3cret" not in "\n".join(config.describe())
    assert "ssl.key.password=[hidden]" in config.describe()


def test_malformed_password_error_hides_the_value():
    too_short = Validator(lambda v: "too short" if len(v) < 10 else None, "10+ characters")
    schema = (Prop("ssl.key.password", "password", None, "A secret.", too_short),)
    with pytest.raises(ConfigError) as info:
        Config({"ssl.key.password": "s3cret"}, schema=schema)
    assert "s3cret" not in str(info.value) and "ssl.key.password" in str(info.value)


def test_schema_is_one_line_per_property():
    names = [prop.name for prop in BROKER_SCHEMA]
    assert len(names) == len(set(names))
    for prop in BROKER_SCHEMA:
        assert prop.doc.endswith("."), prop.name
        if prop.default is not None:
            prop.parse(prop.default)  # every default passes its own validator


SSL_FILES = "ssl.keystore.location=/etc/broker.pem\nssl.truststore.location=/etc/ca.pem\n"


@pytest.mark.parametrize("value", ["nonsense", "host", "host:port", "::1:9094", "[::1]9094", "h:99999", "h/x:1",
                                   "https://h:9094"])
def test_bad_admin_listener_names_the_property(tmp_path, value):
    with pytest.raises(ConfigError, match=r"configuration admin.listener: expected host:port \(\[ipv6\]:port\)"):
        load(f"{SSL_FILES}admin.listener={value}\n", tmp_path)


@pytest.mark.parametrize("value", ["127.0.0.1:9094", ":9094", "[::1]:9094", "admin.example:0"])
def test_admin_listener_addresses(tmp_path, value):
    assert load(f"{SSL_FILES}admin.listener={value}\n", tmp_path)["admin.listener"] == value


@pytest.mark.parametrize("prop", ["ssl.keystore.location", "ssl.truststore.location"])
def test_admin_listener_needs_the_ssl_files(tmp_path, prop):
    text = "".join(line + "\n" for line in SSL_FILES.splitlines() if not line.startswith(prop))
    with pytest.raises(ConfigError, match=f"^Missing required configuration {prop}: needed by admin.listener$"):
        load(f"{text}admin.listener=127.0.0.1:9094\n", tmp_path)
    assert load(text, tmp_path)["admin.listener"] is None  # without the admin API nothing asks for them
