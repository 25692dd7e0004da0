"""The checked-in protobuf code matches the .proto files, and the contracts pass buf lint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), "--out", str(tmp_path)], check=True)
    checked_in = ROOT / "shared" / "client" / "recsys_client" / "api"
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    current = {p.name: p.read_text() for p in checked_in.iterdir() if p.is_file() and p.suffix in {".py", ".pyi"}}
    stale = sorted(name for name in fresh.keys() | current.keys() if fresh.get(name) != current.get(name))
    assert not stale, f"recsys_client/api is stale, run `make proto`: {stale}"


def test_protos_pass_buf_lint() -> None:
    buf = shutil.which("buf")
    assert buf, "buf not found: `make setup` installs it from npm (@bufbuild/buf)"
    result = subprocess.run([buf, "lint"], cwd=ROOT / "proto", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
