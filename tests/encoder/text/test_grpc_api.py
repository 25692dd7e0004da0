"""The EncoderService over real gRPC with the real model: vectors, options, errors, streaming, health, metrics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recsys.encoder.service import EncoderService
from recsys.encoder.text.embedder import Embedder
from recsys.encoder.text.grpc_api import SERVICE_NAME
from recsys.encoder.text.tokenization import TextTokenizer
from recsys.shared.behavior_models import BehaviorModelRecord, save_model_record
from recsys_client.aio import EncoderClient
from recsys_client.api import encoder_pb2, encoder_pb2_grpc
from tests.encoder.gated import GatedEmbedder, metric, scrape
from tests.encoder.reference import st_encode

MakeEncoder = Callable[..., EncoderService]
StartEncoder = Callable[..., Awaitable[EncoderService]]

TEXTS = [
    "A crew of a commercial space tug meets a deadly alien.",
    "Slow-cooked tomato soup with basil.",
    "How to prune roses in early spring",
    "Jazz piano trio, live in Tokyo",
    "Quarterly tax filing for small businesses",
    "A detective hunts a serial killer through a rainy city",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


async def test_embed_gives_sentence_transformers_vectors_to_concurrent_callers(
    client: EncoderClient, embedder: Embedder
) -> None:
    requests = [TEXTS[n:] + TEXTS[:n] for n in range(len(TEXTS))]
    responses = await asyncio.gather(*(client.embed(texts) for texts in requests))
    reference = dict(zip(TEXTS, st_encode(embedder, TEXTS), strict=True))

    for texts, vectors in zip(requests, responses, strict=True):
        got = np.array(vectors)
        expected = np.array([reference[text] for text in texts])
        assert got.shape == (len(texts), embedder.dimensions)
        assert cosines(got, expected).min() >= 0.9999
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


async def test_dimensions_return_the_renormalized_prefix_of_the_full_vector(client: EncoderClient) -> None:
    full = np.array(await client.embed(TEXTS[:2]))
    short = np.array(await client.embed(TEXTS[:2], dimensions=128))
    raw_short = np.array(await client.embed(TEXTS[:2], dimensions=128, normalize=False))

    assert short.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(raw_short, full[:, :128], atol=1e-5)
    np.testing.assert_allclose(short, full[:, :128] / np.linalg.norm(full[:, :128], axis=1, keepdims=True), atol=1e-5)


async def test_an_over_length_text_is_cut_and_reported_when_truncation_is_on(
    client: EncoderClient, embedder: Embedder
) -> None:
    response = await client.embed_raw(["short text", "word " * 600])

    first, long = response.embeddings
    assert not first.truncated and first.tokens < 10
    assert long.truncated and long.tokens == embedder.max_tokens
    assert response.dimensions == embedder.dimensions and response.model == embedder.name


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (encoder_pb2.EmbedRequest(), grpc.StatusCode.INVALID_ARGUMENT, "texts is empty"),
        (encoder_pb2.EmbedRequest(texts=["fine", ""]), grpc.StatusCode.INVALID_ARGUMENT, "text 1 is empty"),
        (
            encoder_pb2.EmbedRequest(texts=["fine", "word " * 600], truncate=False),
            grpc.StatusCode.INVALID_ARGUMENT,
            r"text 1 has more than max_tokens 256 tokens",
        ),
        (
            encoder_pb2.EmbedRequest(texts=["a"] * 1025),
            grpc.StatusCode.INVALID_ARGUMENT,
            "too many texts: 1025 in one request, at most 1024",
        ),
        (
            encoder_pb2.EmbedRequest(texts=["a"], dimensions=385),
            grpc.StatusCode.INVALID_ARGUMENT,
            "dimensions 385 is more than the model's 384",
        ),
    ],
)
async def test_bad_requests_get_their_status_code_and_a_message_naming_the_problem(
    client: EncoderClient, request_: encoder_pb2.EmbedRequest, code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.stub.Embed(request_, timeout=30)

    assert caught.value.code() == code
    assert re.search(message, caught.value.details() or "")


async def test_more_texts_than_the_queue_holds_are_refused_as_resource_exhausted(start_encoder: StartEncoder) -> None:
    small = await start_encoder(queue_capacity=4)
    async with EncoderClient(f"127.0.0.1:{small.port}") as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.embed(["one", "two", "three", "four", "five"])

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue capacity of 4" in (caught.value.details() or "")


async def stream_of(requests: list[encoder_pb2.EmbedRequest]) -> AsyncIterator[encoder_pb2.EmbedStreamRequest]:
    for request in requests:
        yield encoder_pb2.EmbedStreamRequest(request=request)


async def test_embed_stream_answers_in_request_order(client: EncoderClient, embedder: Embedder) -> None:
    requests = [encoder_pb2.EmbedRequest(texts=[text]) for text in TEXTS] * 3
    responses = [response async for response in client.stub.EmbedStream(stream_of(requests))]
    reference = st_encode(embedder, [request.texts[0] for request in requests])

    got = np.array([response.response.embeddings[0].values for response in responses])
    assert len(responses) == len(requests)
    assert cosines(got, reference).min() >= 0.9999


async def test_a_bad_request_ends_the_stream_with_its_status_after_the_earlier_answers(client: EncoderClient) -> None:
    requests = [
        encoder_pb2.EmbedRequest(texts=["fine"]),
        encoder_pb2.EmbedRequest(texts=["also fine"]),
        encoder_pb2.EmbedRequest(texts=["ok", ""]),
        encoder_pb2.EmbedRequest(texts=["never answered"]),
    ]
    received: list[encoder_pb2.EmbedStreamResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for response in client.stub.EmbedStream(stream_of(requests)):
            received.append(response)

    assert len(received) == 2
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request 2: text 1 is empty" in (caught.value.details() or "")


async def test_model_info_describes_the_model_and_the_batching(encoder: EncoderService, client: EncoderClient) -> None:
    info = await client.model_info()

    assert info.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert (info.dimensions, info.max_tokens) == (384, 256)
    assert (info.device, info.dtype) == ("cpu", "float32")
    settings = encoder.settings
    assert info.batching.max_batch_size == settings.batch_max_size
    assert info.batching.max_batch_tokens == settings.batch_max_tokens
    assert info.batching.max_wait_ms == pytest.approx(settings.batch_max_wait_ms)
    assert info.batching.queue_capacity == settings.queue_capacity
    assert info.batching.max_texts_per_request == settings.max_texts_per_request
    assert info.batching.bulk_share == pytest.approx(settings.batch_bulk_share)
    assert info.batching.live_pass_ms == pytest.approx(settings.batch_live_pass_ms)
    assert info.batching.live_grace_ms == pytest.approx(settings.batch_live_grace_ms)


async def test_health_is_not_serving_while_the_model_loads_then_serving(make_encoder: MakeEncoder) -> None:
    service = make_encoder(share_model=False)
    starting = asyncio.create_task(service.start())
    while not service.port:
        await asyncio.sleep(0.005)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        early = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await encoder_pb2_grpc.EncoderServiceStub(channel).Embed(encoder_pb2.EmbedRequest(texts=["hi"]))
        await starting
        late = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        overall = await health.Check(health_pb2.HealthCheckRequest(service=""))

    assert early.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "loading" in (caught.value.details() or "")
    assert late.status == overall.status == health_pb2.HealthCheckResponse.SERVING
    assert service.ready.is_set()


async def test_health_turns_serving_only_after_the_model_warmed_up(
    make_encoder: MakeEncoder, embedder: Embedder
) -> None:
    gated = GatedEmbedder(embedder)
    service = make_encoder()
    service._embedder = gated
    starting = asyncio.create_task(service.start())
    while not service.port:
        await asyncio.sleep(0.005)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        await asyncio.sleep(0.2)
        warming = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        gated.warm_gate.set()
        await starting
        warm = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))

    assert warming.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert warm.status == health_pb2.HealthCheckResponse.SERVING
    assert metric(scrape(service.metrics_port), "recsys_encoder_warm_up_seconds") > 0


async def test_a_call_whose_deadline_passes_while_queued_never_reaches_the_model(
    make_encoder: MakeEncoder, embedder: Embedder
) -> None:
    gated = GatedEmbedder(embedder)
    gated.warm_gate.set()
    service = make_encoder()
    service._embedder = gated
    await service.start()
    gated.pass_gate.clear()
    gated.in_pass.clear()  # the warm-up's passes are done
    async with EncoderClient(f"127.0.0.1:{service.port}") as client:
        first = asyncio.create_task(client.embed(["keeps the model busy"]))
        await asyncio.to_thread(gated.in_pass.wait, 5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.embed(["too late to matter"], timeout=0.2)
        gated.pass_gate.set()
        await first
        after = await client.embed(["served as usual"])

    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "too late to matter" not in gated.seen and len(after) == 1
    assert (
        metric(scrape(service.metrics_port), "recsys_encoder_texts_dropped_total", lane="live", reason="caller_gone")
        == 1
    )


@pytest.mark.parametrize(
    ("precision", "dtype", "width"),
    [
        (encoder_pb2.PRECISION_INT8, np.int8, 384),
        (encoder_pb2.PRECISION_UINT8, np.uint8, 384),
        (encoder_pb2.PRECISION_BINARY, np.int8, 48),
        (encoder_pb2.PRECISION_UBINARY, np.uint8, 48),
    ],
)
async def test_quantized_precisions_come_back_as_bytes_of_the_float_vectors(
    client: EncoderClient, precision: int, dtype: type[np.generic], width: int
) -> None:
    floats = await client.embed_raw(TEXTS[:3])
    response = await client.stub.Embed(encoder_pb2.EmbedRequest(texts=TEXTS[:3], precision=precision), timeout=30)  # type: ignore[arg-type]

    rows = np.array([np.frombuffer(e.quantized, dtype=dtype) for e in response.embeddings])
    assert response.precision == precision and rows.shape == (3, width)
    assert all(not e.values for e in response.embeddings)
    vectors = np.array([e.values for e in floats.embeddings])
    if width == 48:
        bits = np.unpackbits((rows.astype(np.int16) + (128 if dtype is np.int8 else 0)).astype(np.uint8), axis=1)
        np.testing.assert_array_equal(bits, vectors > 0)
    else:
        # Monotone in each dimension: a larger value never gets a lower level.
        order = np.argsort(vectors[:, 0])
        assert np.all(np.diff(rows[order, 0].astype(int)) >= 0)


async def test_an_unknown_precision_is_invalid_argument(client: EncoderClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.stub.Embed(encoder_pb2.EmbedRequest(texts=["a"], precision=9), timeout=30)  # type: ignore[arg-type]

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown precision 9" in (caught.value.details() or "")


async def test_bad_requests_are_refused_while_everyone_else_is_served(
    encoder: EncoderService, client: EncoderClient
) -> None:
    bad = [
        encoder_pb2.EmbedRequest(texts=[""]),
        encoder_pb2.EmbedRequest(texts=["word " * 600], truncate=False),
        encoder_pb2.EmbedRequest(texts=["a"] * 5000),
        encoder_pb2.EmbedRequest(texts=["a"], dimensions=4000),
        encoder_pb2.EmbedRequest(texts=["a"], precision=42),  # type: ignore[arg-type]
    ]
    good = [client.embed([text]) for text in TEXTS]
    outcomes = await asyncio.gather(
        *(client.stub.Embed(request, timeout=30) for request in bad), *good, return_exceptions=True
    )

    refused, served = outcomes[: len(bad)], outcomes[len(bad) :]
    assert all(isinstance(o, grpc.aio.AioRpcError) and o.code() == grpc.StatusCode.INVALID_ARGUMENT for o in refused)
    assert all(isinstance(vectors, list) and len(vectors) == 1 for vectors in served)
    metrics = scrape(encoder.metrics_port)
    assert metric(metrics, "recsys_encoder_requests_refused_total", lane="live", reason="invalid") == len(bad)
    assert metric(metrics, "recsys_encoder_request_seconds_count", lane="live") == len(TEXTS)


async def test_metrics_report_passes_tokens_and_padding_per_lane(
    encoder: EncoderService, client: EncoderClient
) -> None:
    await client.embed(TEXTS)
    metrics = scrape(encoder.metrics_port)

    assert metric(metrics, "recsys_encoder_texts_total", lane="live") == len(TEXTS)
    tokens = metric(metrics, "recsys_encoder_tokens_total", lane="live")
    padded = metric(metrics, "recsys_encoder_padded_tokens_total", lane="live")
    assert 0 < tokens <= padded
    assert metric(metrics, "recsys_encoder_pass_texts_count", lane="live") >= 1
    assert "recsys_encoder_tokens_per_second" not in metrics  # a rate is the scraper's rate() of tokens_total
    assert 'recsys_encoder_queue_texts{lane="bulk"} 0.0' in metrics


async def test_an_overlong_text_is_refused_before_it_is_tokenized(
    client: EncoderClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenized: list[int] = []
    real = TextTokenizer.tokenize

    def counting(self: TextTokenizer, texts: Any) -> Any:
        tokenized.append(sum(len(t) for t in texts))
        return real(self, texts)

    monkeypatch.setattr(TextTokenizer, "tokenize", counting)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.stub.Embed(encoder_pb2.EmbedRequest(texts=["ok", "x" * 70_000]), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "text 1 has 70000 characters; at most 65536" in (caught.value.details() or "")
    assert tokenized == []
    await client.stub.Embed(encoder_pb2.EmbedRequest(texts=["ok"]), timeout=30)
    assert tokenized == [2], "a request within the limits is tokenized (the counter sees it)"


async def test_a_request_over_the_size_limit_is_resource_exhausted(client: EncoderClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.stub.Embed(encoder_pb2.EmbedRequest(texts=["y" * 60_000] * 80), timeout=30)  # 4.8 MB
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Embed request of" in (caught.value.details() or "")


async def test_model_info_reports_the_behavior_model_and_the_blend_the_last_refresh_chose(
    encoder: EncoderService, client: EncoderClient
) -> None:
    assert not (await client.model_info()).HasField("behavior_model")  # no refresh has run yet

    tuned = {"behavior": 1.0, "taste": 0.1, "session": 0.0, "popularity": 0.2, "evidence_k": 5.0, "sequence": 0.3}
    figures = {
        "self_tuned": 1.0,
        "validation_users": 120.0,
        "ndcg": 0.12,
        "defaults_ndcg": 0.1,
        "popularity_ndcg": 0.05,
    }
    types = {"view": 0.5**0.5, "click": 1.0, "purchase": 2.0, "dislike": -(3.0**0.5)}  # contrast 0.5
    await save_model_record(encoder.store, BehaviorModelRecord(1_700_000_000_000, None, tuned, figures, types))
    info = (await client.model_info()).behavior_model
    assert dict(info.event_type_weights) == pytest.approx(types)
    assert info.version == 1_700_000_000_000
    assert dict(info.blend_weights) == pytest.approx({k: v for k, v in tuned.items() if k != "evidence_k"})
    assert info.user_evidence_k == 5.0
    assert info.self_tuned and not info.content_map
    assert (info.validation_users, info.validation_ndcg) == (120, pytest.approx(0.12))
    assert (info.defaults_ndcg, info.popularity_ndcg) == (pytest.approx(0.1), pytest.approx(0.05))

    # Too few events to tune: the record holds no weights, and the encoder's configured ones are reported.
    await save_model_record(encoder.store, BehaviorModelRecord(1_700_000_000_001, None, None, {"self_tuned": 0.0}))
    info = (await client.model_info()).behavior_model
    defaults = encoder.settings.for_you_weights()
    assert not info.self_tuned
    assert not info.event_type_weights  # a record from before types were weighed
    assert info.blend_weights["popularity"] == pytest.approx(defaults.popularity)
    assert info.user_evidence_k == pytest.approx(defaults.evidence_k)
    assert info.item_evidence_k == 0.0  # no content map

    # With a content map: the item evidence k it was fit with (the one the refresh's tuner chose).
    chosen_map = {"item_evidence_k": 10.0, "behavior_dims": 8}
    await save_model_record(
        encoder.store, BehaviorModelRecord(1_700_000_000_002, chosen_map, None, {"self_tuned": 0.0})
    )
    info = (await client.model_info()).behavior_model
    assert info.content_map and info.item_evidence_k == 10.0
