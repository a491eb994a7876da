"""The `keystream` command line without a broker: options, exit codes, files written, formatting."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, KafkaException

from keystream import cli as cli_module
from keystream.broker.server import client_auth
from keystream.cli import cli
from keystream.cli_common import describe_error
from keystream.cli_consume import consume_loop, consumer_config, parse_offset
from keystream.cli_topic import format_description, select_topics, topic_pattern
from keystream.client_config import build_client_config
from keystream.config import Config, load_config


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def fake_broker(monkeypatch):
    """Replace the broker's run(config) so serve/up return at once with a known code."""
    calls: list[Config] = []

    def run(config: Config, on_started=None) -> int:
        calls.append(config)
        return 0

    monkeypatch.setattr(cli_module, "_broker_runner", lambda: run)
    for name in [n for n in __import__("os").environ if n.startswith("KEYSTREAM_")]:
        monkeypatch.delenv(name)
    return calls


def test_help_lists_the_commands(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "up", "topic", "produce", "consume"):
        assert command in result.output


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and "keystream" in result.output


def test_serve_runs_the_broker_with_the_loaded_config(runner, tmp_path, fake_broker):
    path = tmp_path / "server.properties"
    path.write_text("num.partitions=3\n")
    result = runner.invoke(cli, ["serve", "--config", str(path), "--override", "node.id=5"])
    assert result.exit_code == 0, result.output
    assert fake_broker[0]["num.partitions"] == 3 and fake_broker[0].node_id == 5


def test_serve_exit_code_comes_from_the_broker(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_module, "_broker_runner", lambda: lambda config: 3)
    path = tmp_path / "server.properties"
    path.write_text("")
    assert runner.invoke(cli, ["serve", "--config", str(path)]).exit_code == 3


def test_serve_bad_config_fails_naming_the_property(runner, tmp_path, fake_broker):
    path = tmp_path / "server.properties"
    path.write_text("log.segment.bytes=big\n")
    result = runner.invoke(cli, ["serve", "--config", str(path)])
    assert result.exit_code == 1
    assert "log.segment.bytes" in result.output and not fake_broker


def test_serve_missing_config_file(runner, tmp_path, fake_broker):
    result = runner.invoke(cli, ["serve", "--config", str(tmp_path / "nope.properties")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_serve_check_prints_effective_config(runner, tmp_path, fake_broker):
    path = tmp_path / "server.properties"
    path.write_text("num.partitions=2\n")
    result = runner.invoke(cli, ["serve", "--config", str(path), "--check"])
    assert result.exit_code == 0
    assert "num.partitions=2" in result.output.splitlines() and not fake_broker


def test_serve_bad_override(runner, tmp_path, fake_broker):
    path = tmp_path / "server.properties"
    path.write_text("")
    result = runner.invoke(cli, ["serve", "--config", str(path), "--override", "novalue"])
    assert result.exit_code == 2


def test_up_writes_configs_and_runs(runner, tmp_path, fake_broker):
    data_dir = tmp_path / "ks"
    result = runner.invoke(cli, ["up", "--data-dir", str(data_dir), "--port", "19999", "--sasl-port", "19998"])
    assert result.exit_code == 0, result.output
    assert "kcat" in result.output and "keystream consume" in result.output
    assert "scram-client.properties" in result.output and "sasl.password" not in result.output
    config = fake_broker[0]
    ssl_listener, sasl_listener = config.listeners
    assert ssl_listener.port == 19999 and ssl_listener.host == "127.0.0.1"
    assert (sasl_listener.security_protocol, sasl_listener.host, sasl_listener.port) == ("SASL_SSL", "127.0.0.1", 19998)
    assert config.for_listener(sasl_listener.name, "sasl.enabled.mechanisms") == ["SCRAM-SHA-512"]
    assert client_auth(config, ssl_listener) == "required" and client_auth(config, sasl_listener) == "none"
    # the SCRAM client file appears only once a running broker has stored the user
    assert not (data_dir / "scram-client.properties").exists()
    assert config.log_dirs == [str((data_dir / "data").resolve())]
    server = load_config(data_dir / "server.properties", environ={})
    assert server["auto.create.topics.enable"] is False
    client, _ = build_client_config(None, data_dir / "client.properties")
    assert client["bootstrap.servers"] == "127.0.0.1:19999" and client["security.protocol"] == "SSL"
    for key in ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location"):
        assert Path(client[key]).is_file(), key
    # kcat -F reads the file without Java escapes, so values must be written literally
    assert "bootstrap.servers=127.0.0.1:19999" in (data_dir / "client.properties").read_text()


def test_up_rejects_bad_port(runner, tmp_path, fake_broker):
    assert runner.invoke(cli, ["up", "--data-dir", str(tmp_path), "--port", "0"]).exit_code == 2
    assert runner.invoke(cli, ["up", "--data-dir", str(tmp_path), "--port", "9000", "--sasl-port", "9000"]).exit_code == 2
    assert not fake_broker


@pytest.mark.parametrize("args", [
    ["consume"],
    ["consume", "--topic", "t", "--include", "t.*"],
    ["consume", "--topic", "t", "--offset", "5"],
    ["consume", "--topic", "t", "--partition", "0", "--offset", "5", "--from-beginning"],
    ["consume", "--topic", "t", "--partition", "0", "--offset", "soon"],
    ["consume", "--topic", "t", "--property", "print.key=maybe"],
    ["consume", "--topic", "t", "--property", "print.key"],
    ["produce", "--topic", "t", "--property", "parse.key=1"],
    ["produce", "--topic", "t", "--acks", "2"],
    ["produce"],
    ["topic", "create"],
    ["topic", "create", "--topic", "t", "--partitions", "0"],
    ["topic", "create", "--topic", "t", "--config", "novalue"],
    ["topic", "alter", "--topic", "t"],
    ["topic", "alter", "--topic", "t", "--add-config", "a=1", "--delete-config", "a"],
    ["topic", "list", "--topic", "("],
])
def test_usage_errors_exit_2_before_connecting(runner, args):
    result = runner.invoke(cli, [*args, "--bootstrap-server", "127.0.0.1:1"])
    assert result.exit_code == 2, result.output


def test_bad_command_config_exits_1(runner, tmp_path):
    result = runner.invoke(cli, ["topic", "list", "--command-config", str(tmp_path / "missing.properties")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_select_topics():
    names = ["test", "test2", "testXtopic", "test.topic", "__consumer_offsets"]
    assert select_topics(names, None, False) == sorted(names)
    assert select_topics(names, None, True) == ["test", "test.topic", "test2", "testXtopic"]
    assert select_topics(names, topic_pattern("test"), False) == ["test"]
    assert select_topics(names, topic_pattern(r"test\.topic"), False) == ["test.topic"]
    assert select_topics(names, topic_pattern("test.*"), False) == ["test", "test.topic", "test2", "testXtopic"]


def node(node_id: int) -> SimpleNamespace:
    return SimpleNamespace(id=node_id)


def test_format_description():
    partitions = [
        SimpleNamespace(id=1, leader=None, replicas=[node(1)], isr=[]),
        SimpleNamespace(id=0, leader=node(1), replicas=[node(1)], isr=[node(1)]),
    ]
    desc = SimpleNamespace(name="t", topic_id="AAAAAAAAAAAAAAAAAAAAAQ", partitions=partitions)
    assert format_description(desc, {"retention.ms": "1000", "cleanup.policy": "compact"}) == [
        "Topic: t\tTopicId: AAAAAAAAAAAAAAAAAAAAAQ\tPartitionCount: 2\tReplicationFactor: 1"
        "\tConfigs: cleanup.policy=compact,retention.ms=1000",
        "\tTopic: t\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1",
        "\tTopic: t\tPartition: 1\tLeader: none\tReplicas: 1\tIsr: ",
    ]


def test_describe_error_uses_kafka_names():
    assert describe_error(KafkaException(KafkaError(3))).startswith("UNKNOWN_TOPIC_OR_PARTITION")
    assert describe_error(KafkaError(36, "Topic 't' already exists.")) == (
        "TOPIC_ALREADY_EXISTS: Topic 't' already exists."
    )
    assert describe_error(KafkaError(KafkaError._TIMED_OUT)).startswith("_TIMED_OUT")
    assert describe_error(RuntimeError("boom")) == "boom"


def test_parse_offset():
    assert parse_offset("earliest") == OFFSET_BEGINNING
    assert parse_offset("LATEST") == OFFSET_END
    assert parse_offset("42") == 42


def test_consumer_defaults_like_kafka():
    throwaway = consumer_config(None, False, "read_uncommitted")
    assert throwaway["group.id"].startswith("console-consumer-")
    assert throwaway["enable.auto.commit"] == "false" and throwaway["auto.offset.reset"] == "latest"
    named = consumer_config("g", True, "read_committed")
    assert named["group.id"] == "g" and named["enable.auto.commit"] == "true"
    assert named["auto.offset.reset"] == "earliest" and named["isolation.level"] == "read_committed"


class FakeMessage:
    def __init__(self, value: bytes | None = b"v", error: KafkaError | None = None):
        self._value, self._error = value, error

    def error(self):
        return self._error

    def value(self):
        return self._value


class FakeConsumer:
    """poll() hands out the scripted messages, then nothing."""

    def __init__(self, script):
        self.script = list(script)
        self.polls = 0

    def poll(self, timeout):
        self.polls += 1
        return self.script.pop(0) if self.script else None


def test_consume_loop_stops_at_max_messages():
    seen = []
    consumer = FakeConsumer([FakeMessage(b"a"), None, FakeMessage(b"b"), FakeMessage(b"c")])
    assert consume_loop(consumer, seen.append, max_messages=2, timeout_ms=None) == 2
    assert [m.value() for m in seen] == [b"a", b"b"]


def test_consume_loop_stops_after_idle_timeout():
    consumer = FakeConsumer([FakeMessage(b"a")])
    assert consume_loop(consumer, lambda m: None, max_messages=None, timeout_ms=0) == 1


def test_consume_loop_warns_on_errors_and_raises_fatal(capsys):
    warning = FakeMessage(error=KafkaError(3, "Subscribed topic not available"))
    assert consume_loop(FakeConsumer([warning]), lambda m: None, None, timeout_ms=0) == 0
    assert "UNKNOWN_TOPIC_OR_PARTITION" in capsys.readouterr().err
    fatal = FakeMessage(error=KafkaError(KafkaError._FATAL, "fenced", fatal=True))
    with pytest.raises(KafkaException):
        consume_loop(FakeConsumer([fatal]), lambda m: None, None, timeout_ms=None)
