"""A backend that has only recsys-client[redis]: publishes events, then calls every RPC; prints what came back.

Run by tests/e2e/test_light_client.py with the python of a fresh virtual environment, so it imports
nothing but the standard library, grpc and recsys_client. Argument: a JSON object with the services'
addresses, the Redis URL and stream prefix, the catalog to publish and the user's purchases.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from recsys_client import (
    AsyncEncoderClient,
    AsyncMonitorClient,
    AsyncRecommenderClient,
    EncoderClient,
    EventPublisher,
    MonitorClient,
    RecommenderClient,
    embed_request,
)
from recsys_client.api import recommender_pb2

T = TypeVar("T")
COPY_SUFFIX = "-copy"
GONE = "gone-1"


def until(check: Callable[[], T | None], what: str, timeout_s: float = 120.0) -> T:
    """Polls until the check returns something truthy, and returns it."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.2)
    return result


def similar(recommender: RecommenderClient, item_id: str) -> recommender_pb2.SimilarItemsResponse | None:
    """SimilarItems of a stored item, None while the item is unknown (NOT_FOUND)."""
    try:
        return recommender.similar_items(item_id, 3)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def personalized(
    recommender: RecommenderClient, user: str, purchased: list[str]
) -> recommender_pb2.ForYouResponse | None:
    """The user's feed once every purchase took effect: personalized, and no purchased item in it (seen)."""
    feed = recommender.for_you(user, 5)
    done = feed.strategy == "personalized" and not set(purchased) & set(ids(feed))
    return feed if done else None


def ids(response: Any) -> list[str]:
    return [item.item_id for item in response.items]


def blocking_calls(config: dict[str, Any]) -> dict[str, Any]:
    addresses, catalog, user = config["addresses"], config["catalog"], config["user"]
    first = catalog[0]
    results: dict[str, Any] = {}
    with (
        EventPublisher.connect(config["redis_url"], stream_prefix=config["prefix"]) as publisher,
        EncoderClient(addresses["encoder"]) as encoder,
        RecommenderClient(addresses["recommender"]) as recommender,
        MonitorClient(addresses["monitor"]) as monitor,
    ):
        for item in catalog:
            publisher.upsert_item(
                item["item_id"],
                item["title"],
                text=item["text"],
                tags=item["tags"],
                category=item["category"],
                attributes=item["attributes"],
                version=item["version"],
            )
        # The same content under another id: the monitor must call it a near-duplicate.
        copy = {key: first[key] for key in ("text", "tags", "category")}
        publisher.upsert_item(first["item_id"] + COPY_SUFFIX, first["title"], **copy)
        publisher.upsert_item(GONE, "Discontinued fondue set", text="Six forks and a burner.", version=1)
        published = [item["item_id"] for item in catalog] + [first["item_id"] + COPY_SUFFIX, GONE]
        until(lambda: all(similar(recommender, item_id) for item_id in published), "the catalog stored")

        publisher.delete_item(GONE, version=2)
        now = time.time()
        for step, item_id in enumerate(config["purchases"]):
            publisher.record_interaction(
                f"light-{step}", user, item_id, "purchase", session_id="s1", ts=now - 60 + step
            )
        results["deleted_item_not_found"] = until(lambda: similar(recommender, GONE) is None, "the deletion applied")
        feed = until(lambda: personalized(recommender, user, config["purchases"]), "the purchases applied")
        results["for_you"] = {"strategy": feed.strategy, "ids": ids(feed)}
        results["for_you_unknown_user"] = recommender.for_you("nobody-yet", 3).strategy
        results["similar_items"] = ids(recommender.similar_items(first["item_id"], 3))
        found = recommender.search_items(config["query"], 3, where={"category": "outdoor"})
        results["search_items"] = {"strategy": found.strategy, "ids": ids(found)}

        results["embed"] = [len(vector) for vector in encoder.embed(["trail running shoes", "espresso"])]
        quantized = encoder.embed_raw(["trail running shoes"], precision="int8")
        results["embed_int8"] = [len(e.quantized) for e in quantized.embeddings]
        stream = encoder.embed_stream([embed_request(["a"]), embed_request(["b", "c"], dimensions=64)])
        results["embed_stream"] = [[len(e.values) for e in response.embeddings] for response in stream]
        info = encoder.model_info()
        results["model_info"] = {"model": info.model, "dimensions": info.dimensions}

        duplicates = until(
            lambda: monitor.anomalies(kind="near_duplicate", space="items.content"), "a near-duplicate found"
        )
        results["anomalies"] = sorted({anomaly.subject for anomaly in duplicates})
        watch = monitor.watch_alerts(after_id="0", event="anomaly.detected", timeout=60)
        alert = next(r.alert for r in watch if r.alert.kind == "near_duplicate")
        watch.cancel()
        results["watch_alerts"] = {"kind": alert.kind, "subject": alert.subject}
        report = monitor.drift_report("items.content")
        results["drift_report"] = {"space": report.space, "current_size": report.current_size}
        reset = monitor.reset_reference("items.content")
        results["reset_reference"] = {
            "space": reset.space,
            "reference_size": reset.reference_size,
            "current_size": reset.current_size,
        }
    return results


async def async_calls(config: dict[str, Any]) -> dict[str, Any]:
    addresses, first = config["addresses"], config["catalog"][0]
    async with (
        AsyncEncoderClient(addresses["encoder"]) as encoder,
        AsyncRecommenderClient(addresses["recommender"]) as recommender,
        AsyncMonitorClient(addresses["monitor"]) as monitor,
    ):
        vectors = await encoder.embed(["trail running shoes"])
        streamed = [len(r.embeddings) async for r in encoder.embed_stream([embed_request(["a", "b"])])]
        similar_items = await recommender.similar_items(first["item_id"], 3)
        report = await monitor.drift_report("items.content")
        watch = monitor.watch_alerts(after_id="0", event="anomaly.detected", timeout=60)
        async for response in watch:
            alert = response.alert
            break
        watch.cancel()
    return {
        "embed": [len(vector) for vector in vectors],
        "embed_stream": streamed,
        "similar_items": ids(similar_items),
        "drift_report": report.space,
        "watch_alerts": alert.event,
    }


def main() -> None:
    config = json.loads(sys.argv[1])
    results = {"sync": blocking_calls(config), "async": asyncio.run(async_calls(config))}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
