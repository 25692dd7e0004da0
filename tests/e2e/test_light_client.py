"""The light client installed alone: in a fresh virtual environment, `pip install ./shared/client` brings
grpcio and protobuf and nothing of the services; with the `redis` extra it publishes events to a
running system and calls every RPC of the three services, blocking and asyncio.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from recsys.cli.demo import demo_catalog
from recsys.cli.runner import RunningSystem

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "shared" / "client"
CALLS = Path(__file__).with_name("light_client_calls.py")
# What a backend must not get by installing the client (the server's stack), and what it must get.
ABSENT = ["torch", "pydantic", "redis", "qdrant_client", "recsys", "faststream", "numpy"]
PRESENT = ["grpc", "google.protobuf", "recsys_client", "recsys_client.api.monitor_pb2_grpc"]
CATALOG_IDS = ["k2", "k1", "k3", "k4", "k5", "o3", "o4", "b2", "b3", "e1"]
COFFEE = {"k1", "k2", "k3", "k4", "k5", "b2", "k2-copy"}


def pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# Imports each module named on the command line; prints which could be imported.
PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        found[name] = True
    except ImportError:
        found[name] = False
print(json.dumps(found))
"""


def importable(python: Path, modules: list[str]) -> dict[str, bool]:
    result = subprocess.run(
        [str(python), "-c", PROBE, *modules], capture_output=True, text=True, timeout=60, check=True
    )
    found: dict[str, bool] = json.loads(result.stdout)
    return found


@pytest.fixture(scope="module")
def light_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bool]]:
    """A fresh virtual environment with recsys-client[redis] from the folder, and what the plain install brought."""
    folder = tmp_path_factory.mktemp("light-client")
    # pip builds a folder in place (build/, *.egg-info): a copy keeps the checkout clean.
    source = folder / "client"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True, timeout=120)
    python = folder / "venv" / "bin" / "python"
    pip(python, str(source))
    plain = importable(python, ABSENT + PRESENT)
    pip(python, f"{source}[redis]")
    return python, plain


def test_the_client_installs_with_grpc_and_protobuf_and_nothing_of_the_services(
    light_python: tuple[Path, dict[str, bool]],
) -> None:
    _, plain = light_python
    assert {module for module, found in plain.items() if found} == set(PRESENT)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_backend_with_only_the_client_publishes_events_and_calls_every_rpc(
    light_python: tuple[Path, dict[str, bool]], system: RunningSystem
) -> None:
    python, _ = light_python
    catalog = {item["item_id"]: item for item in demo_catalog()}
    config = {
        "addresses": {name: system.address(name) for name in ("encoder", "recommender", "monitor")},
        "redis_url": system.settings.redis_url,
        "prefix": system.settings.stream_prefix,
        "catalog": [catalog[item_id] for item_id in CATALOG_IDS],
        "user": "lena",
        "purchases": ["k3", "k4"],
        "query": "shoes for running on muddy trails",
    }
    # A process of its own (the services run on this event loop, so it must not be blocked meanwhile).
    process = await asyncio.create_subprocess_exec(
        str(python),
        str(CALLS),
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ""},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode == 0, stderr.decode()
    results: dict[str, Any] = json.loads(stdout)
    blocking, asynchronous = results["sync"], results["async"]

    # EncoderService: Embed (float32 and int8), EmbedStream in request order, GetModelInfo.
    assert blocking["embed"] == [384, 384]
    assert blocking["embed_int8"] == [384]
    assert blocking["embed_stream"] == [[384], [64, 64]]
    assert blocking["model_info"]["dimensions"] == 384 and "MiniLM" in blocking["model_info"]["model"]
    # RecommenderService: the published items, the published purchases, the deletion.
    assert blocking["similar_items"][0] == "k2-copy", "the same content under another id is the closest"
    assert set(blocking["similar_items"]) <= COFFEE
    # (the script waited until the feed was personalized and left both purchases out, as seen)
    assert blocking["for_you"]["strategy"] == "personalized"
    assert set(blocking["for_you"]["ids"][:2]) <= COFFEE, "coffee purchases, coffee first"
    assert blocking["for_you_unknown_user"] == "popular"
    assert blocking["search_items"] == {"strategy": "search", "ids": ["o4", "o3"]}
    assert blocking["deleted_item_not_found"] is True
    # MonitorService: the near-duplicate as an anomaly and as an alert, the report, the reset.
    [pair] = blocking["anomalies"]
    assert set(pair.split("|")) == {"k2", "k2-copy"}
    assert blocking["watch_alerts"] == {"kind": "near_duplicate", "subject": pair}
    assert blocking["drift_report"]["space"] == "items.content" and blocking["drift_report"]["current_size"] > 0
    reset = blocking["reset_reference"]
    assert reset["space"] == "items.content"
    assert reset["reference_size"] == reset["current_size"] > 0, "the current window became the reference"
    # The asyncio clients, one call shape or more per service.
    assert asynchronous == {
        "embed": [384],
        "embed_stream": [2],
        "similar_items": blocking["similar_items"],
        "drift_report": "items.content",
        "watch_alerts": "anomaly.detected",
    }
