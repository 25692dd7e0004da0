"""The event contracts in shared/contracts: current, valid AsyncAPI, and true to the README and to what is published.

An entry is checked against the AsyncAPI document the way a backend team would read it: the stream key
picks the channel, the entry's fields must match exactly one of its messages (draft-07, AsyncAPI's schema
format), and `data` must match that message's contentSchema; the payload must also match its JSON Schema
2020-12 file, and the consumers' own parser must accept it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from redis.asyncio import Redis
from referencing import Registry
from referencing.jsonschema import DRAFT7

from recsys.cli.publish import line_to_fields
from recsys.encoder.interactions.behavior_log import BehaviorLog, behavior_log_stream
from recsys.encoder.interactions.behavior_model import LoggedInteraction
from recsys.encoder.notices import NoticePublisher, notice
from recsys.monitor.alerts import anomaly_alert, drift_alert
from recsys.monitor.anomalies import Anomaly, AnomalyKind
from recsys.monitor.drift import DriftReport
from recsys.shared.events import MalformedEvent, parse_interaction, parse_item_event
from recsys.shared.settings import StreamNames
from recsys.shared.stream_retention import RetentionReport, alert_on_cap
from recsys.shared.streams import ConsumerPolicy, StreamSubscriptions
from recsys.tools.event_contracts import ASYNCAPI_FILE, SCHEMAS_FOLDER
from tests.support import stream_entries_async

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "shared" / "contracts"
NODE_SCRIPT = ROOT / "tests" / "node" / "validate_asyncapi.js"
NODE_MODULES = ROOT / ".venv" / "node" / "node_modules"
DOCUMENT_URI = "urn:recsys:asyncapi"
PREFIX = "recsys"
STREAMS = StreamNames(PREFIX)


@cache
def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CONTRACTS / ASYNCAPI_FILE).read_text())
    return loaded


def _registry() -> Registry[Any]:
    return Registry().with_resource(DOCUMENT_URI, DRAFT7.create_resource(_document()))


def _draft7_errors(pointer: str, instance: Any) -> list[str]:
    """What is wrong with `instance` against the document's schema at `pointer` (a "#/..." reference)."""
    validator = Draft7Validator({"$ref": DOCUMENT_URI + pointer}, registry=_registry())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def _channel_of(stream: str) -> str:
    """The channel whose address is this stream key under the default prefix."""
    found = [
        channel_id
        for channel_id, channel in _document()["channels"].items()
        if channel["address"].replace("{prefix}", PREFIX) == stream
    ]
    assert len(found) == 1, f"{stream}: channels {found}"
    return found[0]


def _message_errors(message_id: str, fields: dict[str, str]) -> list[str]:
    """Why an entry is not this message: its fields, then its `data` against the contentSchema."""
    pointer = f"#/components/messages/{message_id}/payload"
    errors = _draft7_errors(pointer, fields)
    payload = _document()["components"]["messages"][message_id]["payload"]
    content = payload.get("properties", {}).get("data", {}).get("contentSchema")
    if errors or content is None:
        return errors
    try:
        data = json.loads(fields["data"])
    except json.JSONDecodeError as exc:
        return [f"data: not JSON ({exc.msg})"]
    return [f"data/{error}" for error in _draft7_errors(content["$ref"], data)]


def match_entry(stream: str, fields: dict[str, str]) -> str:
    """The one message of the stream's channel that the entry is; fails naming what is wrong otherwise."""
    messages = _document()["channels"][_channel_of(stream)]["messages"]
    problems = {
        message_id: _message_errors(message_id, fields)
        for message_id in (ref["$ref"].rsplit("/", 1)[-1] for ref in messages.values())
    }
    matched = [message_id for message_id, errors in problems.items() if not errors]
    assert len(matched) == 1, f"{stream} {fields}: {problems}"
    return matched[0]


def _schema_file(message_id: str) -> Path:
    """The JSON Schema 2020-12 file of a message's data (or of the whole entry, for entries without data)."""
    payload = _document()["components"]["messages"][message_id]["payload"]
    ref = payload.get("properties", {}).get("data", {}).get("contentSchema", payload)["$ref"]
    name = re.sub(r"(?<!^)(?=[A-Z])", "-", ref.rsplit("/", 1)[-1]).lower()
    return CONTRACTS / SCHEMAS_FOLDER / f"{name}.schema.json"


def schema_errors(message_id: str, instance: Any) -> list[str]:
    schema = json.loads(_schema_file(message_id).read_text())
    Draft202012Validator.check_schema(schema)
    return [error.message for error in Draft202012Validator(schema).iter_errors(instance)]


def consumer_accepts(stream: str, fields: dict[str, str]) -> bool:
    parse = parse_interaction if stream == STREAMS.interactions else parse_item_event
    try:
        parse(fields, "1700000000000-0")
    except MalformedEvent:
        return False
    return True


# --- Up to date, and laid out as data ------------------------------------------------------------------------


def test_checked_in_contracts_are_what_recsys_contracts_makes(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "recsys.cli.main", "contracts", "--out", str(tmp_path)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    fresh = {str(p.relative_to(tmp_path)): p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    current = {str(p.relative_to(CONTRACTS)): p.read_text() for p in CONTRACTS.rglob("*") if p.is_file()}
    stale = sorted(name for name in fresh.keys() | current.keys() if fresh.get(name) != current.get(name))
    assert not stale, f"shared/contracts is stale, run `make contracts`: {stale}"


def test_contracts_check_fails_on_a_stale_folder(tmp_path: Path) -> None:
    shutil.copytree(CONTRACTS, tmp_path / "contracts")
    schema = tmp_path / "contracts" / SCHEMAS_FOLDER / "item-upserted.schema.json"
    schema.write_text(schema.read_text().replace('"title"', '"name"'))
    command = [sys.executable, "-m", "recsys.cli.main", "contracts", "--check", "--out", str(tmp_path / "contracts")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "item-upserted.schema.json" in result.stdout + result.stderr


def test_contracts_folder_holds_data_only() -> None:
    files = {str(p.relative_to(CONTRACTS)) for p in CONTRACTS.rglob("*") if p.is_file()}
    assert ASYNCAPI_FILE in files
    assert all(name == ASYNCAPI_FILE or re.fullmatch(r"schemas/[a-z-]+\.schema\.json", name) for name in files), files


def test_every_json_schema_is_draft_2020_12() -> None:
    for path in (CONTRACTS / SCHEMAS_FOLDER).glob("*.schema.json"):
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path.name
        Draft202012Validator.check_schema(schema)


def test_every_stream_is_a_channel_with_its_default_key() -> None:
    addresses = {channel["address"].replace("{prefix}", PREFIX) for channel in _document()["channels"].values()}
    inputs = [STREAMS.items, STREAMS.interactions, STREAMS.embeddings]
    expected = {*inputs, *map(StreamNames.dead_letter, inputs), STREAMS.alerts, behavior_log_stream(PREFIX)}
    assert addresses == expected
    prefix = _document()["components"]["parameters"]["prefix"]
    assert prefix["default"] == PREFIX
    assert "RECSYS_STREAM_PREFIX" in prefix["description"]


# --- The official AsyncAPI parser ----------------------------------------------------------------------------


def _parse_with_node(document: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node and (NODE_MODULES / "@asyncapi" / "parser").is_dir(), (
        "node and @asyncapi/parser are needed (make setup installs them)"
    )
    environment = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    return subprocess.run(
        [node, str(NODE_SCRIPT), str(document)], capture_output=True, text=True, env=environment, timeout=120
    )


def test_asyncapi_document_passes_the_official_parser() -> None:
    result = _parse_with_node(CONTRACTS / ASYNCAPI_FILE)
    assert result.returncode == 0, result.stderr
    understood = json.loads(result.stdout)
    assert understood["channels"] == {k: v["address"] for k, v in _document()["channels"].items()}
    assert understood["operations"] == {k: v["action"] for k, v in _document()["operations"].items()}
    senders = {_channel_of(STREAMS.items), _channel_of(STREAMS.interactions)}
    backend = {
        op["channel"]["$ref"].rsplit("/", 1)[-1]
        for op in _document()["operations"].values()
        if op["action"] == "send" and op["tags"] == [{"name": "backend"}]
    }
    assert backend == senders


@pytest.mark.parametrize(
    ("breakage", "diagnostic"),
    [
        # AsyncAPI 2's verb, not 3's.
        (lambda doc: doc["operations"]["publishItemEvents"].update(action="publish"), '"action" property'),
        # An operation may only carry messages of its own channel.
        (
            lambda doc: doc["operations"]["publishItemEvents"]["messages"].append(
                {"$ref": "#/channels/alerts/messages/driftDetected"}
            ),
            "asyncapi3-operation-messages-from-referred-channel",
        ),
        (lambda doc: doc["channels"]["items"].update(address=7), '"address" property type'),
    ],
    ids=["v2-action", "message-of-another-channel", "address-not-a-string"],
)
def test_the_parser_rejects_a_broken_document(tmp_path: Path, breakage: Any, diagnostic: str) -> None:
    document = json.loads(json.dumps(_document()))
    breakage(document)
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(yaml.safe_dump(document, sort_keys=False))
    result = _parse_with_node(broken)
    assert result.returncode == 1
    assert diagnostic in result.stderr


# --- The README's examples -------------------------------------------------------------------------------------


def _readme_entries() -> Iterator[tuple[str, dict[str, str]]]:
    """Every event the README shows: XADD commands, and the JSONL lines `recsys publish` takes."""
    readme = (ROOT / "README.md").read_text()
    for line in readme.splitlines():
        if re.search(r"\bXADD\s+\S+\s+'\*'", line):
            words = shlex.split(line)
            at = [w.upper() for w in words].index("XADD")
            stream, entry_id, pairs = words[at + 1], words[at + 2], words[at + 3 :]
            assert entry_id == "*" and len(pairs) % 2 == 0, line
            partition = re.fullmatch(r"\{(.+):\d+\}", stream)
            if partition is not None:  # a partition of a partitioned input stream: its stream's contract
                stream = partition.group(1)
                assert "partitions" in _document()["channels"][_channel_of(stream)]["x-redis"], line
            yield stream, dict(zip(pairs[::2], pairs[1::2], strict=True))
    for block in re.findall(r"```jsonl\n(.*?)```", readme, re.DOTALL):
        for line in block.splitlines():
            # Made into an entry by `recsys publish` itself; which file a line belongs in, the reader tells.
            kind: Literal["items", "interactions"] = "interactions" if "event_id" in json.loads(line) else "items"
            yield getattr(STREAMS, kind), line_to_fields(kind, line)


README_ENTRIES = list(_readme_entries())


def test_the_readme_shows_events_of_every_input_type() -> None:
    events = {fields.get("event") for _, fields in README_ENTRIES}
    assert {"item.upserted", "item.deleted", "interaction"} <= events
    assert len(README_ENTRIES) >= 6


@pytest.mark.parametrize(("stream", "fields"), README_ENTRIES, ids=[f["data"][:40] for _, f in README_ENTRIES])
def test_every_readme_event_matches_the_contracts(stream: str, fields: dict[str, str]) -> None:
    message = match_entry(stream, fields)
    assert schema_errors(message, json.loads(fields["data"])) == []
    assert consumer_accepts(stream, fields)


def _readme_entry(event: str) -> tuple[str, dict[str, str]]:
    return next((stream, dict(fields)) for stream, fields in README_ENTRIES if fields.get("event") == event)


@pytest.mark.parametrize(
    ("event", "change"),
    [
        ("item.upserted", lambda data: data.pop("title")),
        ("item.upserted", lambda data: data.update(tags="sci-fi")),
        ("item.deleted", lambda data: data.update(item_id=" m1")),
        ("interaction", lambda data: data.update(type="buy")),
        ("interaction", lambda data: data.update(ts="yesterday")),
    ],
    ids=["no-title", "tags-not-a-list", "id-with-a-space", "unknown-type", "ts-not-a-time"],
)
def test_a_broken_readme_event_is_rejected_by_the_schema(event: str, change: Any) -> None:
    stream, fields = _readme_entry(event)
    message = match_entry(stream, fields)
    data = json.loads(fields["data"])
    change(data)
    fields["data"] = json.dumps(data)
    assert schema_errors(message, data)
    with pytest.raises(AssertionError):
        match_entry(stream, fields)
    assert not consumer_accepts(stream, fields)


def test_an_entry_with_an_unknown_event_type_is_no_message_of_its_stream() -> None:
    stream, fields = _readme_entry("item.upserted")
    with pytest.raises(AssertionError, match=r"'item\.upserted' was expected"):
        match_entry(stream, {**fields, "event": "item.created"})


# --- The schemas promise no more than the consumers accept ---------------------------------------------------

ITEM = {"item_id": "m1", "title": "Alien"}
INTERACTION = {"event_id": "e-1", "user_id": "u1", "item_id": "m1", "type": "click"}


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("item.upserted", ITEM),
        ("item.upserted", {**ITEM, "ts": "2023-11-14T22:13:20Z"}),
        ("item.upserted", {**ITEM, "ts": "2023-11-14"}),
        ("item.upserted", {**ITEM, "ts": "2023-11-14 22:13:20.5+01:00"}),
        ("item.upserted", {**ITEM, "ts": "1970-01-01 at noon"}),
        ("item.upserted", {**ITEM, "ts": -1}),
        ("item.upserted", {**ITEM, "colour": "red"}),
        ("item.upserted", {"item_id": "m1"}),
        ("item.upserted", {**ITEM, "tags": ["t"] * 65}),
        ("item.upserted", {**ITEM, "attributes": {"cast": ["a", "b"]}}),
        ("item.upserted", {**ITEM, "version": -1}),
        ("item.deleted", {"item_id": "m1", "version": 3, "ts": 1700000000}),
        ("item.deleted", {"item_id": ""}),
        ("interaction", {**INTERACTION, "value": None, "session_id": None}),
        ("interaction", {**INTERACTION, "type": "rate", "value": 4.5, "ts": "2023-11-14T22:13:20"}),
        ("interaction", {**INTERACTION, "session_id": "s" * 257}),
        ("interaction", {k: v for k, v in INTERACTION.items() if k != "user_id"}),
    ],
)
def test_schema_and_consumer_agree_on_a_payload(event: str, data: dict[str, Any]) -> None:
    stream = STREAMS.interactions if event == "interaction" else STREAMS.items
    message = {"item.upserted": "itemUpserted", "item.deleted": "itemDeleted", "interaction": "interaction"}[event]
    fields = {"event": event, "data": json.dumps(data)}
    assert (schema_errors(message, data) == []) == consumer_accepts(stream, fields)


# --- What the services publish ---------------------------------------------------------------------------------


def test_every_message_example_is_that_message() -> None:
    streams = {
        channel_id: channel["address"].replace("{prefix}", PREFIX)
        for channel_id, channel in _document()["channels"].items()
    }
    for channel_id, channel in _document()["channels"].items():
        for ref in channel["messages"].values():
            message_id = ref["$ref"].rsplit("/", 1)[-1]
            for example in _document()["components"]["messages"][message_id]["examples"]:
                assert match_entry(streams[channel_id], example["payload"]) == message_id


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=False)
    yield client
    await client.aclose()


async def test_notices_the_encoder_publishes_match_the_contract(redis: Redis) -> None:
    publisher = NoticePublisher(redis, STREAMS.embeddings, maxlen=1000)
    await publisher.publish(
        [notice("items", "content", "m1", "updated", version=3), notice("users", "taste", "u1", "deleted")]
    )
    entries = await stream_entries_async(redis, STREAMS.embeddings)
    assert [match_entry(STREAMS.embeddings, fields) for _, fields in entries] == ["embeddingNotice"] * 2
    for _, fields in entries:
        assert schema_errors("embeddingNotice", json.loads(fields["data"])) == []


async def test_alerts_the_monitor_and_the_retention_publish_match_the_contract(redis: Redis) -> None:
    report = DriftReport(
        space="users.taste",
        reference_size=400,
        current_size=380,
        sufficient=True,
        reason="",
        permutations=100,
        alpha=0.05,
        computed_at=1700000000.0,
        drifted=True,
        mmd2=0.03,
        p_value=0.0099,
        classifier_auc=math.nan,  # published as null
        explanation=("Drift.", "The centroid moved."),
    )
    published = [drift_alert(report).to_fields()]
    for kind in AnomalyKind:
        anomaly = Anomaly(kind, "items.content", "m1|m2", 0.99, 0.98, 1700000000.0, f"a {kind.value}")
        published.append(anomaly_alert(anomaly).to_fields())
    await alert_on_cap(redis, STREAMS.alerts)(RetentionReport(STREAMS.interactions, 0, 12, [], 100))
    [(_, capped)] = await stream_entries_async(redis, STREAMS.alerts)
    matched = [match_entry(STREAMS.alerts, fields) for fields in [*published, capped]]
    assert matched == ["driftDetected"] + ["anomalyDetected"] * len(AnomalyKind) + ["streamCapped"]
    for message, fields in zip(matched, [*published, capped], strict=True):
        assert schema_errors(message, json.loads(fields["data"])) == []


async def test_dead_letters_a_consumer_writes_match_the_contract(redis_url: str, redis: Redis) -> None:
    async def handle(fields: dict[str, str], entry_id: str) -> None:
        parse_item_event(fields, entry_id)

    policy = ConsumerPolicy(max_records=4, claim_idle_ms=300, max_attempts=1, concurrency=2, polling_interval_ms=50)
    subscriptions = StreamSubscriptions(redis_url, redis, grace_s=5)
    subscriptions.consume(stream=STREAMS.items, group="g", consumer="c1", handler=handle, policy=policy)
    await subscriptions.start()
    dead_letters = StreamNames.dead_letter(STREAMS.items)
    try:
        await redis.xadd(STREAMS.items, {"event": "item.upserted", "data": "{oops", "trace": "t-1"})
        await redis.xadd(STREAMS.items, {"event": "item.renamed", "data": "{}"})
        for _ in range(200):
            if await redis.xlen(dead_letters) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await subscriptions.stop()
    entries = await stream_entries_async(redis, dead_letters)
    assert len(entries) == 2
    for _, fields in entries:
        assert match_entry(dead_letters, fields) == "deadLetter"
        assert schema_errors("deadLetter", fields) == []


async def test_the_behavior_log_matches_the_contract(redis: Redis) -> None:
    stream = behavior_log_stream(PREFIX)
    log = BehaviorLog(redis, stream, maxlen=100)
    for weight, ts, kind in [(4.0, 1700000000.25, "purchase"), (-3.0, 1.5e9, "dislike"), (1e-05, 1700000000.0, None)]:
        await log.append(LoggedInteraction("e-1", "u1", "m1", weight, ts, kind))
    entries = await stream_entries_async(redis, stream)
    assert [match_entry(stream, fields) for _, fields in entries] == ["behaviorLogEntry"] * 3
    # Read back as written: the type where it was kept, none on an entry written before the log kept it.
    assert [entry.type async for entry in log.entries()] == ["purchase", "dislike", None]
    for _, fields in entries:
        assert schema_errors("behaviorLogEntry", fields) == []
