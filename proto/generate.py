"""Regenerates the checked-in Python code for proto/recsys/v1 into the client distribution's recsys_client/api.

Run: python proto/generate.py (or make proto). The one copy lives in the light client (shared/client), which
the services depend on.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from importlib import metadata
from pathlib import Path

# One generator version for everyone: code from a newer grpcio-tools refuses to import
# with an older grpcio at run time, so the generator is pinned and checked here.
GRPCIO_TOOLS_VERSION = "1.85.1"

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUTPUT = ROOT / "shared" / "client" / "recsys_client" / "api"
# protoc names imports after the .proto path (recsys.v1.x_pb2); inside the installed
# package the generated modules live at recsys_client.api.
_IMPORT = re.compile(r"^from recsys\.v1 import (\w+) as", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    from grpc_tools import protoc  # imported late: only the generator needs grpcio-tools

    installed = metadata.version("grpcio-tools")
    if installed != GRPCIO_TOOLS_VERSION:
        raise SystemExit(f"grpcio-tools {GRPCIO_TOOLS_VERSION} required, {installed} installed")
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "recsys" / "v1").glob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        include = str(Path(protoc.__file__).parent / "_proto")
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        written = []
        out_dir.mkdir(parents=True, exist_ok=True)
        for produced in sorted((Path(tmp) / "recsys" / "v1").iterdir()):
            text = _IMPORT.sub(r"from recsys_client.api import \1 as", produced.read_text())
            target = out_dir / produced.name
            target.write_text(text)
            written.append(target)
    init = out_dir / "__init__.py"
    init.write_text('"""Generated gRPC and protobuf code for recsys.v1 (made by proto/generate.py; do not edit)."""\n')
    return [init, *written]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUTPUT, help="output folder")
    written = generate(parser.parse_args().out)
    print(f"wrote {len(written)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
