"""Fuzzing the running system: generated entries and requests each answered right, the system healthy after.

Stream entries of every shape (bytes that are not UTF-8, wrong types, huge and tiny values, stray
fields) are published with a plain XADD; every one is processed or dead-lettered with a reason and
nothing stays pending. Requests to every RPC are generated from the protobuf descriptors (random
values of each field's type, nested messages, maps) and sent along with random bytes; each gets OK
or a status naming the caller's problem, never UNKNOWN or INTERNAL. The examples are generated
deterministically (derandomized) so a failure names a reproducible input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from recsys.cli.runner import RunningSystem
from recsys_client.api import encoder_pb2, monitor_pb2, recommender_pb2
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# What a plain message never holds: a Python exception's class name or a traceback.
PYTHON_TRACE = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|Traceback")
ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def generated(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` examples of a strategy, the same on every run (hypothesis as a generator: I/O happens after)."""
    examples: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(example: Any) -> None:
        examples.append(example)

    collect()
    return examples


# --- stream entries ---------------------------------------------------------------------------------

TEXT = st.one_of(st.text(max_size=40), st.text(min_size=300, max_size=2000), st.just(""), st.just(" "))
NUMBER = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e18, 1.79e12, 1e300, 5, 4.5]),
)
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBER, TEXT), lambda inner: st.lists(inner, max_size=4), max_leaves=8
)


def _shaped(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Half plausible events (the right keys and kinds of values), half anything: keys left out, values of any type."""
    plausible = st.fixed_dictionaries(required, optional=optional)
    anything = st.fixed_dictionaries(
        {}, optional={key: st.one_of(value, JSON_VALUE) for key, value in (required | optional).items()}
    )
    return st.one_of(plausible, anything)


NOW_ISH = st.floats(min_value=1.6e9, max_value=1.7e9)
INTERACTION = _shaped(
    {
        "event_id": st.text(min_size=1, max_size=20).filter(lambda t: t.strip() == t and t != ""),
        "user_id": st.sampled_from(["u1", "u2", "u3"]),
        "item_id": st.sampled_from(["fuzz-a", "fuzz-b", "no-such-item"]),
        "type": st.sampled_from(["view", "click", "add_to_cart", "purchase", "like", "dislike", "rate", "teleport"]),
    },
    {
        "value": st.one_of(st.floats(0, 5), NUMBER),
        "session_id": st.text(max_size=10),
        "ts": st.one_of(NOW_ISH, NUMBER, st.sampled_from(["2024-01-01T00:00:00", "9999-12-31T00:00:00", "yesterday"])),
    },
)
ITEM = _shaped(
    {"item_id": st.sampled_from(["fuzz-a", "fuzz-b", "fuzz-c"]), "title": st.text(min_size=1, max_size=40)},
    {
        "text": TEXT,
        "tags": st.lists(st.text(max_size=10), max_size=5),
        "category": st.text(max_size=10),
        "attributes": st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), NUMBER), max_size=3),
        "version": st.one_of(st.integers(0, 10), NUMBER),
        "ts": st.one_of(NOW_ISH, NUMBER),
    },
)


def _entries(kinds: list[str], payloads: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[Any, Any]]:
    json_data = payloads.map(lambda payload: json.dumps(payload, allow_nan=True))
    data = st.one_of(json_data, json_data, st.binary(max_size=200), st.text(max_size=50))
    extra = st.dictionaries(st.one_of(st.text(max_size=8), st.binary(max_size=8)), st.binary(max_size=30), max_size=3)
    return st.builds(
        lambda event, body, more: {**more, "event": event, "data": body},
        st.one_of(st.sampled_from(kinds), st.sampled_from(kinds), st.binary(max_size=10)),
        data,
        st.one_of(st.just({}), extra),
    )


async def test_generated_entries_are_each_processed_or_dead_lettered_and_the_system_stays_healthy(
    system: RunningSystem,
) -> None:
    streams = system.settings.streams
    published = {
        streams.items: generated(_entries(["item.upserted", "item.deleted"], ITEM), 150),
        streams.interactions: generated(_entries(["interaction"], INTERACTION), 250),
    }
    for stream, entries in published.items():
        for fields in entries:
            await system.redis.xadd(stream, fields)

    async def settled() -> bool:
        for stream in published:
            for group in await system.redis.xinfo_groups(stream):
                if group["lag"] != 0 or int(group["pending"]) != 0:
                    return False
        return True

    await eventually(settled, timeout_s=300, what="every generated entry processed or dead-lettered")
    for stream, entries in published.items():
        dead = await system.redis.xrange(f"{stream}:dead-letter")
        assert all(fields[b"dead_letter_reason"] for _, fields in dead)
        assert 0 < len(dead) < len(entries), f"{stream}: the examples must hold good and bad entries alike"
    await _healthy(system)


# --- gRPC requests ----------------------------------------------------------------------------------

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: TEXT,
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=50),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=True, allow_infinity=True),
    FieldDescriptor.TYPE_UINT32: st.one_of(st.integers(0, 20), st.integers(0, 2**32 - 1)),
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_ENUM: st.integers(-5, 10),
}


def messages(descriptor: Descriptor, message_class: Callable[..., Message], depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of a type with every field set to random values of its type (or left unset)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth > 2:
                continue
            nested = field.message_type
            if nested.GetOptions().map_entry:
                key, value = nested.fields_by_name["key"], nested.fields_by_name["value"]
                if value.type == FieldDescriptor.TYPE_MESSAGE:
                    continue
                fields[field.name] = st.dictionaries(_SCALARS[key.type], _SCALARS[value.type], max_size=4)
                continue
            inner = messages(nested, GetMessageClass(nested), depth + 1)
            value_strategy: st.SearchStrategy[Any] = inner
        else:
            value_strategy = _SCALARS[field.type]
        fields[field.name] = st.lists(value_strategy, max_size=4) if field.is_repeated else value_strategy
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: _build(message_class, values))


def _build(message_class: Callable[..., Message], values: dict[str, Any]) -> Message:
    message = message_class()
    for name, value in values.items():
        target = getattr(message, name)
        if isinstance(value, Message):
            target.CopyFrom(value)
        elif isinstance(value, dict):
            target.update(value)
        elif isinstance(value, list):
            if value and isinstance(value[0], Message):
                for item in value:
                    target.add().CopyFrom(item)
            else:
                target.extend(value)
        else:
            setattr(message, name, value)
    return message


RPCS = [
    ("encoder", "/recsys.v1.EncoderService/Embed", encoder_pb2.EmbedRequest),
    ("encoder", "/recsys.v1.EncoderService/GetModelInfo", encoder_pb2.GetModelInfoRequest),
    ("recommender", "/recsys.v1.RecommenderService/SimilarItems", recommender_pb2.SimilarItemsRequest),
    ("recommender", "/recsys.v1.RecommenderService/ForYou", recommender_pb2.ForYouRequest),
    ("recommender", "/recsys.v1.RecommenderService/SearchItems", recommender_pb2.SearchItemsRequest),
    ("monitor", "/recsys.v1.MonitorService/GetDriftReport", monitor_pb2.GetDriftReportRequest),
    ("monitor", "/recsys.v1.MonitorService/ListAnomalies", monitor_pb2.ListAnomaliesRequest),
    ("monitor", "/recsys.v1.MonitorService/ResetReference", monitor_pb2.ResetReferenceRequest),
]


@pytest.mark.parametrize(("service", "method", "request_class"), RPCS, ids=[rpc[1].rsplit("/", 1)[1] for rpc in RPCS])
async def test_generated_requests_get_ok_or_a_status_naming_the_problem(
    system: RunningSystem, service: str, method: str, request_class: Any
) -> None:
    requests = [r.SerializeToString() for r in generated(messages(request_class.DESCRIPTOR, request_class), 60)]
    requests += generated(st.binary(max_size=300), 20)
    async with grpc.aio.insecure_channel(system.address(service)) as channel:  # type: ignore[arg-type]
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        for raw in requests:
            try:
                await call(raw, timeout=60)
            except grpc.aio.AioRpcError as error:
                assert error.code() in ANSWERS, f"{method} answered {error.code().name} ({error.details()}) to {raw!r}"
                assert error.details(), f"{method} refused {raw!r} without saying why"
                assert not PYTHON_TRACE.search(error.details() or ""), f"{method} leaked internals: {error.details()}"
    await _healthy(system)


async def _healthy(system: RunningSystem) -> None:
    for service in system.services:
        async with grpc.aio.insecure_channel(system.address(service)) as channel:  # type: ignore[arg-type]
            answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
