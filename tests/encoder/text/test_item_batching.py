"""Item ingestion on real Redis and the real model: entries in flight merge into shared model passes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import numpy as np
from redis.asyncio import Redis

from recsys.encoder.service import EncoderService
from recsys.encoder.text.embedder import Embedder
from recsys.shared.events import ItemUpserted
from recsys.shared.ids import point_id
from recsys.shared.points import CONTENT, ITEMS
from tests.encoder.gated import GatedEmbedder, metric, scrape
from tests.encoder.reference import st_encode
from tests.support import eventually

MakeEncoder = Callable[..., EncoderService]
WaitConsumed = Callable[[Redis, str, str, str | bytes], Awaitable[None]]

NOUNS = ["kettle", "tent", "novel", "keyboard", "jacket", "lamp", "guitar", "bicycle"]


async def test_item_entries_waiting_together_share_model_passes_and_get_their_own_vectors(
    make_encoder: MakeEncoder, embedder: Embedder, wait_consumed: WaitConsumed
) -> None:
    gated = GatedEmbedder(embedder)
    gated.warm_gate.set()
    service = make_encoder()
    service._embedder = gated
    await service.start()
    stream, group = service.settings.streams.items, service.settings.item_ingest_group
    items = [{"item_id": f"i{n}", "title": f"{NOUNS[n % 8]} number {n}", "tags": ["gear"]} for n in range(40)]
    # The model is held inside the first item's pass while the other 39 entries arrive.
    gated.pass_gate.clear()
    gated.in_pass.clear()
    await service.redis.xadd(stream, {"event": "item.upserted", "data": json.dumps(items[0])})
    await asyncio.to_thread(gated.in_pass.wait, 10)
    for item in items[1:]:
        last = await service.redis.xadd(stream, {"event": "item.upserted", "data": json.dumps(item)})

    async def all_queued() -> bool:
        return metric(scrape(service.metrics_port), "recsys_encoder_queue_texts", lane="bulk") == 39

    await eventually(all_queued, timeout_s=30, what="39 item texts waiting for the model")
    gated.pass_gate.set()
    await wait_consumed(service.redis, stream, group, last)

    metrics = scrape(service.metrics_port)
    assert metric(metrics, "recsys_encoder_texts_total", lane="bulk") == 40
    assert metric(metrics, "recsys_encoder_pass_texts_count", lane="bulk") <= 3  # the first alone, then 1-2 passes
    ids = [point_id(str(item["item_id"])) for item in items]
    records = await service.store.client.retrieve(ITEMS, ids, with_vectors=True)
    stored = {record.payload["item_id"]: np.array(record.vector[CONTENT]) for record in records}  # type: ignore[index]
    texts = [ItemUpserted.model_validate(item).content_text() for item in items]
    expected = st_encode(embedder, texts)
    got = np.array([stored[item["item_id"]] for item in items])
    assert np.min(np.sum(got * expected, axis=1)) >= 0.9999
