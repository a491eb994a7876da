"""Regenerates the admin API's Python code from proto/keystream/admin/v1/admin.proto (`make gen`).

grpcio-tools' protoc writes `keystream/admin/v1/admin_pb2*.py` (the proto package's path); they live
in `keystream.broker.admin.v1`, so the generated service module's import is rewritten to that
package. `--check` only compares: it fails when the checked-in files are not what protoc makes now.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"
PROTO = "keystream/admin/v1/admin.proto"
OUT = Path(__file__).resolve().parent / "v1"
FILES = ("admin_pb2.py", "admin_pb2.pyi", "admin_pb2_grpc.py")
_IMPORT = "from keystream.admin.v1 import admin_pb2"
_FIXED = "from keystream.broker.admin.v1 import admin_pb2"


def generate() -> dict[str, str]:
    """{file name: text} as protoc makes them now."""
    from grpc_tools import protoc  # noqa: PLC0415  (a build-time tool, not a runtime dependency)

    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={tmp}", f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}", str(PROTO_ROOT / PROTO)]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {PROTO}")
        out = Path(tmp) / Path(PROTO).parent
        return {name: (out / name).read_text(encoding="utf-8").replace(_IMPORT, _FIXED) for name in FILES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generate().items():
        path = OUT / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(name)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run `make gen`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
