"""`keystream certs init|issue|show|revoke` through click's CliRunner on real files."""

import json
import os
import stat

import pytest
from click.testing import CliRunner
from cryptography import x509

from keystream.cli import cli


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["certs", *args], catch_exceptions=False)
    return invoke


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_issue_show_revoke(run, tmp_path):
    ca_dir, out = tmp_path / "ca", tmp_path / "out"
    result = run("init", "--dir", str(ca_dir), "--cn", "Team CA", "--days", "30")
    assert result.exit_code == 0, result.output
    assert "CN=Team CA" in result.output and "SHA-256" in result.output
    assert "BEGIN" not in result.output and mode(ca_dir / "ca.key") == 0o600

    result = run("issue", "--name", "broker-0", "--dir", str(ca_dir), "--out", str(out), "--server",
                 "--san", "DNS:localhost,IP:127.0.0.1", "--san", "DNS:broker-0.kafka")
    assert result.exit_code == 0, result.output
    assert "serverAuth" in result.output and "DNS:broker-0.kafka" in result.output
    assert mode(out / "broker-0.key") == 0o600 and mode(out / "broker-0.pem") == 0o600

    password_file = tmp_path / "pw"
    password_file.write_text("hunter2\n")
    result = run("issue", "--name", "alice", "--dir", str(ca_dir), "--out", str(out), "--client",
                 "--cn", "alice", "--o", "acme", "--ou", "payments", "--key-type", "rsa",
                 "--key-password-file", str(password_file))
    assert result.exit_code == 0, result.output
    assert "CN=alice,OU=payments,O=acme" in result.output and "clientAuth" in result.output
    assert (out / "alice.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "hunter2" not in result.output

    result = run("show", str(out / "broker-0.pem"))
    assert result.exit_code == 0, result.output
    assert "private key (unencrypted; not shown)" in result.output
    assert "DNS:localhost, IP:127.0.0.1, DNS:broker-0.kafka" in result.output
    key_lines = (out / "broker-0.key").read_text().splitlines()[1:-1]
    assert not any(line in result.output for line in key_lines)
    assert "PRIVATE KEY-----" not in result.output

    result = run("show", "--json", str(out / "alice.pem"))
    info = json.loads(result.output)
    assert info["private_key"] == "encrypted" and info["certificates"][0]["key"]["type"] == "RSA"

    result = run("revoke", str(out / "alice.crt"), "--dir", str(ca_dir), "--reason", "keyCompromise")
    assert result.exit_code == 0, result.output
    assert "CN=alice,OU=payments,O=acme" in result.output
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(info["certificates"][0]["serial"], 16))
    assert "keyCompromise" in run("show", str(ca_dir / "crl.pem")).output


def test_default_ca_dir_is_dot_keystream_ca(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("init").exit_code == 0
    assert (tmp_path / ".keystream" / "ca" / "ca.crt").exists()
    assert run("issue", "--name", "bob", "--client", "--server").exit_code == 0
    assert (tmp_path / ".keystream" / "ca" / "bob.pem").exists()


def test_errors_are_one_line_and_exit_non_zero(run, tmp_path):
    ca_dir = str(tmp_path / "ca")
    result = run("issue", "--name", "x", "--dir", ca_dir, "--client")
    assert result.exit_code == 1 and "no CA in" in result.output
    assert run("init", "--dir", ca_dir).exit_code == 0
    result = run("init", "--dir", ca_dir)
    assert result.exit_code == 1 and "already exists" in result.output and "--force" in result.output
    assert run("init", "--dir", ca_dir, "--force", "--key-type", "rsa").exit_code == 0
    result = run("issue", "--name", "x", "--dir", ca_dir)
    assert result.exit_code == 2 and "--server, --client or both" in result.output
    result = run("issue", "--name", "x", "--dir", ca_dir, "--server", "--san", "HOST:foo")
    assert result.exit_code == 1 and "bad SAN" in result.output
    result = run("issue", "--name", "../x", "--dir", ca_dir, "--client")
    assert result.exit_code == 1 and "bad name" in result.output
    assert run("issue", "--name", "x", "--dir", ca_dir, "--server").exit_code == 0
    result = run("issue", "--name", "x", "--dir", ca_dir, "--server")
    assert result.exit_code == 1 and "already exist" in result.output
    assert run("issue", "--name", "x", "--dir", ca_dir, "--server", "--force").exit_code == 0
    empty = tmp_path / "empty"
    empty.write_text("")
    result = run("issue", "--name", "y", "--dir", ca_dir, "--client", "--key-password-file", str(empty))
    assert result.exit_code == 1 and "password file is empty" in result.output
    result = run("show", str(tmp_path / "nope.pem"))
    assert result.exit_code == 1 and "not found" in result.output
    result = run("revoke", str(tmp_path / "ca" / "x.crt"), "--dir", ca_dir, "--reason", "whim")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_server_without_san_warns(run, tmp_path):
    ca_dir = str(tmp_path / "ca")
    run("init", "--dir", ca_dir)
    result = CliRunner().invoke(cli, ["certs", "issue", "--name", "b", "--dir", ca_dir, "--server"])
    assert result.exit_code == 0 and "no --san" in result.output


def test_certs_is_listed_in_help(run):
    assert "certs" in CliRunner().invoke(cli, ["--help"]).output
    help_text = run("--help").output
    for command in ("init", "issue", "show", "revoke"):
        assert command in help_text
