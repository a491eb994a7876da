"""An independent scan of the SSL listener with Debian's testssl.sh (offline, ~10 s): only TLS 1.2
and 1.3, and only ECDHE + AEAD suites. testssl.sh 3.0 cannot present a client certificate, so the
scanned broker requests rather than requires one; protocols and ciphers are configured the same."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.keystream_only


def test_testssl_scan(broker_factory, tmp_path):
    assert shutil.which("testssl"), "testssl.sh is not installed: .ci/run and `make test` install it"
    b = broker_factory(tls=True, **{"ssl.client.auth": "requested"})
    report = tmp_path / "scan.json"
    proc = subprocess.run(
        ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none", "--ip", b.host,
         "--protocols", "--each-cipher", "--jsonfile", str(report), f"{b.host}:{b.port}"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    findings = {f["id"]: f["finding"] for f in json.loads(report.read_text())}
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert findings[old] == "not offered", (old, findings[old])
    assert findings["TLS1_2"].startswith("offered")
    assert findings["TLS1_3"].startswith("offered")
    ciphers = [text for key, text in findings.items() if key.startswith("cipher_x")]
    assert ciphers, findings
    for text in ciphers:
        name = text.split()[1]
        tls13 = name.startswith("TLS_")
        assert tls13 or name.startswith("ECDHE-"), f"not forward secret: {name}"
        assert "GCM" in name or "CHACHA20" in name or "CCM" in name, f"not AEAD: {name}"
    assert not b.tracebacks()
