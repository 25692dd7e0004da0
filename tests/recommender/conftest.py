"""Recommender fixtures: embedded Qdrant with hand-made points, a fake encoder over real gRPC, a running service."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator

import grpc
import pytest

from recsys.recommender.app import RecommenderService
from recsys.recommender.settings import RecommenderSettings
from recsys.shared.store import VectorStore
from recsys_client.aio import RecommenderClient
from recsys_client.api import encoder_pb2_grpc
from tests.recommender.recommender_catalog import BEHAVIOR_DIMS, CONTENT_DIMS, Catalog
from tests.recommender.recommender_fakes import FakeEncoder, FakeEncoderServicer, StartRecommender
from tests.support import free_port


@pytest.fixture(scope="session")
async def fake_encoder() -> AsyncIterator[FakeEncoder]:
    server = grpc.aio.server()
    servicer = FakeEncoderServicer()
    encoder_pb2_grpc.add_EncoderServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield FakeEncoder(server, port, servicer)
    await server.stop(0)


@pytest.fixture
def closed_address() -> str:
    """An address where nothing listens: an encoder that is down."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
async def store() -> AsyncIterator[VectorStore]:
    store = VectorStore.in_memory()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        await store.ensure_collections(CONTENT_DIMS, BEHAVIOR_DIMS)
    yield store
    await store.close()


@pytest.fixture
def catalog(store: VectorStore) -> Catalog:
    return Catalog(store)


def recommender_settings(encoder_address: str, **overrides: object) -> RecommenderSettings:
    return RecommenderSettings(
        recommender_host="127.0.0.1",
        recommender_port=0,
        recommender_metrics_port=0,
        encoder_address=encoder_address,
        encoder_timeout_s=3.0,
        health_interval_s=0.02,
        grpc_grace_s=0.5,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
async def start_recommender(store: VectorStore, fake_encoder: FakeEncoder) -> AsyncIterator[StartRecommender]:
    """Starts a RecommenderService on the test store (port 0), waits until ready, returns a client to it."""
    started: list[tuple[RecommenderService, RecommenderClient]] = []

    async def start(encoder_address: str | None = None, **overrides: object) -> RecommenderClient:
        service = RecommenderService(recommender_settings(encoder_address or fake_encoder.address, **overrides), store)
        await service.start()
        client = RecommenderClient(f"127.0.0.1:{service.port}")
        started.append((service, client))
        await asyncio.wait_for(service.ready.wait(), 10)
        return client

    yield start
    for service, client in started:
        await client.close()
        await service.stop()


@pytest.fixture
async def recommender(start_recommender: StartRecommender) -> RecommenderClient:
    return await start_recommender()


@pytest.fixture
async def start_recommender_on_bare_store(
    fake_encoder: FakeEncoder,
) -> AsyncIterator[tuple[RecommenderService, VectorStore]]:
    """A started recommender on a store whose collections the encoder has not created yet."""
    bare_store = VectorStore.in_memory()
    service = RecommenderService(recommender_settings(fake_encoder.address), bare_store)
    await service.start()
    yield service, bare_store
    await service.stop()
    await bare_store.close()
