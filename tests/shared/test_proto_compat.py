"""The gRPC contracts stay wire compatible: `buf breaking` against the previous commit's protos finds nothing.

`make lint` runs the same check; CI runs only `make test`, so it is here too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"


def _buf() -> str:
    buf = shutil.which("buf") or str(ROOT / ".venv" / "buf" / "node_modules" / ".bin" / "buf")
    assert Path(buf).exists(), "buf not found: `make setup` installs it from npm (@bufbuild/buf)"
    return buf


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def _baseline() -> str:
    """The commit to compare with: the previous one, or HEAD where there is none.

    A shallow clone of depth 1 or a repository with a single commit has no HEAD~1 (buf fails to clone
    it); against HEAD only the uncommitted changes are checked, which is all that can be checked there.
    """
    # CI runs on a clone: without git or a commit there is nothing to compare with, and that is a failure.
    assert shutil.which("git"), "git is needed to compare the protos with the previous commit"
    assert _git("rev-parse", "-q", "--verify", "HEAD^{commit}").returncode == 0, "not a git checkout with a commit"
    return "HEAD~1" if _git("rev-parse", "-q", "--verify", "HEAD~1^{commit}").returncode == 0 else "HEAD"


def _breaking(module: Path, against: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_buf(), "breaking", str(module), "--against", against, "--error-format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_protos_are_wire_compatible_with_the_previous_commit() -> None:
    # Run from the repository root: `.git` is its git directory (or, in a worktree, the file naming it),
    # and subdir= picks the module inside that commit's tree.
    result = _breaking(PROTO, f".git#subdir=proto,ref={_baseline()}", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_reports_a_removed_field(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    ignore = shutil.ignore_patterns("*.py", "__pycache__")
    shutil.copytree(PROTO, before, ignore=ignore)
    shutil.copytree(PROTO, after, ignore=ignore)
    common = after / "recsys" / "v1" / "common.proto"
    text = common.read_text()
    # The first field of the first message that starts with a plain one, gone.
    field = re.search(r"^message (\w+) \{\n(?:\s*//.*\n)*(\s+[\w.]+ (\w+) = \d+;\n)", text, re.MULTILINE)
    assert field, "common.proto: no message with a plain first field to remove"
    common.write_text(text[: field.start(2)] + text[field.end(2) :])
    result = _breaking(after, str(before), tmp_path)
    # 100: breaking changes found (a proto that does not even build would exit 1).
    assert result.returncode == 100, result.stdout + result.stderr
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(f["type"], f'"{field[3]}" on message "{field[1]}"' in f["message"]) for f in findings] == [
        ("FIELD_NO_DELETE", True)
    ]
