"""The layout's promises, read from the source: who may import whom, the payload schema's one home, the package list."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.shared.points import ItemField, PayloadField, UserField

ROOT = Path(__file__).resolve().parents[1]
# The one mapping between folders and import names (pyproject.toml, README "Where things live").
FOLDERS = {"recsys": ROOT / "services", "recsys.shared": ROOT / "shared"}
# The light client: a distribution of its own (shared/client/pyproject.toml) inside shared/, not part of recsys.shared.
CLIENT = ROOT / "shared" / "client"
CLIENT_PACKAGE = CLIENT / "recsys_client"
GENERATED = CLIENT_PACKAGE / "api"


def module_name(path: Path) -> str:
    packages = {**FOLDERS, "recsys_client": CLIENT_PACKAGE}
    for package, folder in sorted(packages.items(), key=lambda pair: -len(str(pair[1]))):
        if path.is_relative_to(folder):
            parts = path.relative_to(folder).with_suffix("").parts
            return ".".join((package, *(p for p in parts if p != "__init__")))
    raise ValueError(f"{path} is outside the packages")


def source_files(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            if not path.is_relative_to(GENERATED):
                yield path


def parse(path: Path) -> ast.Module:
    """The file's syntax tree. CPython 3.11 can raise "AST constructor recursion depth mismatch" when another
    thread runs at the same moment (python/cpython#106905: a failed construction leaves its depth counter off): that
    is retried, not a finding."""
    for _ in range(3):
        try:
            return ast.parse(path.read_text(), str(path))
        except SystemError:
            continue
    return ast.parse(path.read_text(), str(path))


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code (function-level imports too)."""
    found: set[str] = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def reaches(imported: set[str], prefix: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for name in imported)


SERVICES = ROOT / "services"


@pytest.mark.parametrize("forbidden", ["recsys.encoder.text", "torch", "sentence_transformers", "transformers"])
def test_the_interactions_role_never_imports_the_text_model(forbidden: str) -> None:
    # The behavior refresh may use torch on a GPU when configured so; that is its one way in (devices.py).
    allowed = {SERVICES / "encoder" / "devices.py", SERVICES / "encoder" / "interactions" / "behavior_model.py"}
    shared_by_roles = [p for p in (SERVICES / "encoder").glob("*.py") if p.name != "service.py"]
    # Settings classes are plain pydantic: the encoder's settings combine both roles' (text/settings.py).
    harmless = {"recsys.encoder.text.settings", "recsys.encoder.text.settings.TextSettings"}
    offenders = [
        module_name(path)
        for path in [*source_files(SERVICES / "encoder" / "interactions"), *shared_by_roles]
        if path not in allowed and reaches(imports(path) - harmless, forbidden)
    ]
    assert offenders == []


@pytest.mark.parametrize("optional", ["pyspark", "pyarrow"])
def test_only_the_spark_factorizer_imports_spark(optional: str) -> None:
    # The `spark` extra is optional: no service carries it unless RECSYS_BEHAVIOR_FACTORIZER=spark.
    allowed = {SERVICES / "encoder" / "interactions" / "spark_factorizer.py"}
    offenders = [
        module_name(path)
        for path in source_files(SERVICES, ROOT / "shared")
        if path not in allowed and reaches(imports(path), optional)
    ]
    assert offenders == []


@pytest.mark.parametrize("tooling", ["recsys.tools", "recsys.cli"])
def test_no_service_imports_the_offline_tools_or_the_command_line(tooling: str) -> None:
    services = [SERVICES / name for name in ("encoder", "recommender", "monitor")]
    offenders = [module_name(p) for p in source_files(*services, ROOT / "shared") if reaches(imports(p), tooling)]
    assert offenders == []


# What a build leaves in a source folder (`pip install ./shared/client` builds in place): not the layout.
BUILD_OUTPUTS = {"build", "dist"}


def source_inits(folder: Path) -> Iterator[Path]:
    """The __init__.py files of the source packages under a folder, build outputs left out."""
    for init in folder.rglob("__init__.py"):
        parts = init.relative_to(folder).parts
        if not any(part in BUILD_OUTPUTS or part.endswith(".egg-info") for part in parts):
            yield init


def package_inits(folder: Path) -> Iterator[Path]:
    """The __init__.py files of the packages under a folder of the recsys distribution (the client's are its own)."""
    return (init for init in source_inits(folder) if not init.is_relative_to(CLIENT))


def test_every_package_folder_is_installed() -> None:
    configured = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert configured["package-dir"] == {name: folder.name for name, folder in FOLDERS.items()}
    packages = {module_name(init) for folder in FOLDERS.values() for init in package_inits(folder)}
    assert sorted(packages) == sorted(configured["packages"])


def test_the_client_is_a_distribution_of_its_own_that_the_services_require_at_its_version() -> None:
    client = tomllib.loads((CLIENT / "pyproject.toml").read_text())
    assert not (CLIENT / "__init__.py").exists(), "shared/client is no package of recsys.shared"
    packages = {module_name(init) for init in source_inits(CLIENT)}
    assert sorted(packages) == sorted(client["tool"]["setuptools"]["packages"])
    assert (CLIENT_PACKAGE / "py.typed").is_file()
    assert sorted(p.stem for p in GENERATED.glob("*_pb2.pyi")) == sorted(p.stem for p in GENERATED.glob("*_pb2.py"))
    assert client["project"]["dependencies"] == ["grpcio>=1.85.1,<2", "protobuf>=7.35.1,<8"]
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"{client['project']['name']}=={client['project']['version']}" in server["dependencies"]


# What the light client may import: no pydantic, no settings, nothing of the services, so that it installs
# with grpcio and protobuf alone. redis only where EventPublisher.connect imports it (the `redis` extra).
CLIENT_IMPORTS = ("grpc", "google.protobuf", "recsys_client")
OPTIONAL_IMPORT = ("redis", CLIENT_PACKAGE / "publisher.py", "_import_redis")


def _imports_by_function(path: Path) -> Iterator[tuple[str, str]]:
    """(module, name of the enclosing function or "") for every import of a file."""

    def visit(node: ast.AST, function: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, ast.Import):
            yield from ((alias.name, function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, function
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        for child in ast.iter_child_nodes(node):
            yield from visit(child, function)

    yield from visit(parse(path), "")


def test_the_client_imports_only_the_standard_library_grpc_and_protobuf() -> None:
    offenders = []
    for path in sorted(CLIENT_PACKAGE.rglob("*.py")):  # the generated code too
        for module, function in _imports_by_function(path):
            top = module.split(".")[0]
            if (
                top in sys.stdlib_module_names
                or top == "__future__"
                or any(reaches({module}, a) for a in CLIENT_IMPORTS)
            ):
                continue
            if (top, path, function) == OPTIONAL_IMPORT:
                continue
            offenders.append(f"{module_name(path)} imports {module}" + (f" in {function}()" if function else ""))
    assert offenders == []


PAYLOAD_KEYS = {
    value.key for holder in (ItemField, UserField) for value in vars(holder).values() if isinstance(value, PayloadField)
}


def _payload_key_literals(path: Path) -> list[str]:
    """String literals naming a payload key where Qdrant reads them: `key=`, `with_payload=[...]`, `payload={...}`."""
    found = []
    for node in ast.walk(parse(path)):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            values: list[ast.expr] = []
            if keyword.arg == "key":
                values = [keyword.value]
            elif keyword.arg == "with_payload" and isinstance(keyword.value, ast.List | ast.Tuple):
                values = list(keyword.value.elts)
            elif keyword.arg == "payload" and isinstance(keyword.value, ast.Dict):
                values = [key for key in keyword.value.keys if key is not None]
            found += [
                f"{path.relative_to(ROOT)}:{v.lineno} {v.value!r}"
                for v in values
                if isinstance(v, ast.Constant) and v.value in PAYLOAD_KEYS
            ]
    return found


def test_payload_keys_are_spelled_only_in_the_schema_module() -> None:
    schema = ROOT / "shared" / "points.py"
    offenders = [
        hit for p in source_files(SERVICES, ROOT / "shared") if p != schema for hit in _payload_key_literals(p)
    ]
    assert offenders == []


def _mapped_folders(readme: str) -> set[str]:
    """The folders the README's map names: an indented entry lies inside the entry above it."""
    section = readme[readme.index("## Where things live") :]
    block = section[section.index("```") + 3 :]
    block = block[block.index("\n") + 1 : block.index("```")]
    folders: set[str] = set()
    parents: list[tuple[int, str]] = []
    for line in block.splitlines():
        name = line.strip().split(" ", 1)[0]
        indent = len(line) - len(line.lstrip())
        if not name.endswith("/"):
            continue
        parents = [(depth, path) for depth, path in parents if depth < indent]
        path = (parents[-1][1] if parents else "") + name
        parents.append((indent, path))
        folders.add(path)
    return folders


def test_the_readme_map_names_every_package_folder() -> None:
    mapped = _mapped_folders((ROOT / "README.md").read_text())
    roots = {folder.name + "/" for folder in FOLDERS.values()}  # the rule above the map names these
    packages = {init.parent for folder in FOLDERS.values() for init in source_inits(folder)}  # the client's too
    folders = {str(package.relative_to(ROOT)) + "/" for package in packages}
    assert sorted(folders - mapped - roots) == []
    assert sorted(f for f in mapped if not (ROOT / f).is_dir()) == []
