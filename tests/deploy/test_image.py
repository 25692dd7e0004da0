"""The container image recipe: what it installs, in which order, as which user, and how it starts."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.deploy.manifests import DEPLOY_DIR, Manifest, container, find, pod_spec

REPO_ROOT = DEPLOY_DIR.parent

Instruction = tuple[str, str]


def _instructions(dockerfile: Path) -> list[Instruction]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def _env(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def _build_args(instructions: list[Instruction]) -> dict[str, str]:
    pairs = [rest.partition("=") for keyword, rest in instructions if keyword == "ARG" and "=" in rest]
    return {name: value for name, _, value in pairs}


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return _instructions(DEPLOY_DIR / "Dockerfile")


@pytest.fixture(scope="module")
def runtime(instructions: list[Instruction]) -> list[Instruction]:
    """The last stage: what the image runs."""
    return _stages(instructions)[-1]


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_image_starts_the_cli_and_runs_the_whole_system_by_default(
    runtime: list[Instruction], pyproject: dict[str, Any]
) -> None:
    entrypoint = [json.loads(rest) for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    command = [json.loads(rest) for keyword, rest in runtime if keyword == "CMD"]
    assert entrypoint[-1] == ["recsys"]
    assert command[-1] == ["run", "all"]
    assert "recsys" in pyproject["project"]["scripts"]


def test_image_user_is_the_non_root_user_the_pods_run_as(runtime: list[Instruction], base: list[Manifest]) -> None:
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    uid, _, gid = users[-1].partition(":")
    # Numeric, so that the kubelet can check runAsNonRoot without reading /etc/passwd.
    assert uid.isdigit() and int(uid) != 0
    for service in ("encoder-text", "encoder-interactions", "recommender", "monitor"):
        security = pod_spec(find(base, "Deployment", service))["securityContext"]
        assert security["runAsUser"] == int(uid), service
        assert security["runAsGroup"] == int(gid or uid), service


def test_torch_comes_first_from_its_index_at_a_version_the_project_accepts(
    instructions: list[Instruction], pyproject: dict[str, Any]
) -> None:
    runs = [rest for keyword, rest in _stages(instructions)[0] if keyword == "RUN"]
    torch_step = next(i for i, run in enumerate(runs) if "pip install" in run and "torch==" in run)
    project_step = next(i for i, run in enumerate(runs) if re.search(r"pip install [\"']?\.\[all\]", run))
    assert torch_step < project_step
    assert "--index-url" in runs[torch_step] and "${TORCH_INDEX_URL}" in runs[torch_step]

    args = _build_args(instructions)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    encoder_extra = pyproject["project"]["optional-dependencies"]["encoder"]
    torch = next(Requirement(r) for r in encoder_extra if Requirement(r).name == "torch")
    assert torch.specifier.contains(args["TORCH_VERSION"]), f"torch {args['TORCH_VERSION']} is outside {torch}"
    for local_build in ("cpu", "cu128"):
        assert torch.specifier.contains(f"{args['TORCH_VERSION']}+{local_build}")


def test_image_copies_every_source_the_package_build_reads(
    instructions: list[Instruction], pyproject: dict[str, Any]
) -> None:
    copied = {
        part.rstrip("/").removeprefix("./")
        for keyword, rest in _stages(instructions)[0]
        if keyword == "COPY" and not rest.startswith("--from")
        for part in rest.split()[:-1]
    }
    package_dirs = pyproject["tool"]["setuptools"]["package-dir"].values()
    needed = {"pyproject.toml", pyproject["project"]["readme"], *package_dirs}
    assert needed <= copied
    assert all((REPO_ROOT / path).exists() for path in copied)


def test_image_runs_offline_with_its_state_where_the_pods_mount_a_volume(
    runtime: list[Instruction], base: list[Manifest]
) -> None:
    env = _env(runtime)
    assert env["HF_HUB_OFFLINE"] == "1"
    config = find(base, "ConfigMap", "recsys-config")["data"]
    assert env["RECSYS_DATA_DIR"] == config["RECSYS_DATA_DIR"]
    # With a read-only root, every cache must point into the /tmp volume.
    for variable in ("XDG_CACHE_HOME", "HF_HOME"):
        assert env[variable].startswith("/tmp/"), variable
    for role in ("encoder-text", "encoder-interactions"):
        mounts = {m["mountPath"] for m in container(find(base, "Deployment", role), "encoder")["volumeMounts"]}
        assert {"/tmp", env["RECSYS_DATA_DIR"]} <= mounts, role
