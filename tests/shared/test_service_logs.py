"""Service logs: JSON lines on stdout and nothing else; a failed call's log line and its caller share an id."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from recsys.shared.grpc_server import GrpcServer, maps_errors
from recsys.shared.request_ids import REQUEST_ID_KEY
from recsys.shared.settings import ConnectionSettings

SERVICE = "recsys.v1.ProbeService"


class Broken:
    @maps_errors
    async def Fail(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise RuntimeError("a bug in the servicer")


@pytest.fixture
async def broken_server() -> AsyncIterator[GrpcServer]:
    server = GrpcServer.from_settings("127.0.0.1", 0, -1, [SERVICE], ConnectionSettings())
    handler = grpc.unary_unary_rpc_method_handler(Broken().Fail)
    server.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Fail": handler}),))
    await server.start()
    yield server
    await server.stop(0)


async def _fail(server: GrpcServer, metadata: Any = None) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary(f"/{SERVICE}/Fail")(b"", metadata=metadata)
    return raised.value


def _logged_ids(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.fields["request_id"] for r in caplog.records if r.getMessage() == "rpc_failed"]  # type: ignore[attr-defined]


async def test_an_internal_error_names_the_request_id_of_its_log_line(
    broken_server: GrpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    error = await _fail(broken_server)
    assert error.code() is grpc.StatusCode.INTERNAL
    sent_back = dict(error.trailing_metadata() or ())[REQUEST_ID_KEY]
    assert _logged_ids(caplog) == [sent_back] and sent_back in (error.details() or "")


async def test_a_callers_request_id_is_kept(broken_server: GrpcServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    error = await _fail(broken_server, metadata=((REQUEST_ID_KEY, "gateway-trace-42"),))
    assert dict(error.trailing_metadata() or ())[REQUEST_ID_KEY] == "gateway-trace-42"
    assert _logged_ids(caplog) == ["gateway-trace-42"]


def test_a_running_service_writes_only_json_lines_on_stdout_and_nothing_on_stderr(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": str(tmp_path),
        "RECSYS_RECOMMENDER_HOST": "127.0.0.1",
        "RECSYS_RECOMMENDER_PORT": "0",
        "RECSYS_RECOMMENDER_METRICS_PORT": "0",
        "RECSYS_ENCODER_ADDRESS": "127.0.0.1:1",
        "RECSYS_LOG_FORMAT": "",
    }
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "recsys.cli.main", "run", "recommender"], env=env, stdout=out, stderr=err
        )
        try:
            deadline = time.monotonic() + 120
            while b"recommender_started" not in stdout.read_bytes():
                assert process.poll() is None, stderr.read_text() + stdout.read_text()
                assert time.monotonic() < deadline, "the recommender did not start"
                time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
    lines = stdout.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    assert all({"ts", "level", "logger", "event"} <= event.keys() for event in events)
    assert {"grpc_started", "recommender_started"} <= {event["event"] for event in events}
    assert stderr.read_text() == ""


def test_warnings_and_uncaught_errors_of_a_service_become_json_lines_too() -> None:
    script = (
        "import threading, warnings\n"
        "from recsys.shared.logs import configure_logging\n"
        "configure_logging(service=True)\n"
        "warnings.warn('a library is unhappy')\n"
        "thread = threading.Thread(target=lambda: 1 / 0, name='worker')\n"
        "thread.start(); thread.join()\n"
        "raise RuntimeError('the main thread gives up')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr == ""
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["logger"], e["level"]) for e in events] == [
        ("py.warnings", "warning"),
        ("recsys", "critical"),
        ("recsys", "critical"),
    ]
    assert events[1]["thread"] == "worker" and "ZeroDivisionError" in events[1]["error"]
    assert "the main thread gives up" in events[2]["error"]
