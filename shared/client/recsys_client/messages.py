"""The request messages of the recsys RPCs, built from plain arguments (the sync and async clients share them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, cast

from recsys_client.api import common_pb2, encoder_pb2, recommender_pb2

# Responses larger than this fail rather than arrive; the services send at most as much
# (1,024 embeddings of 384 floats are 1.5 MiB).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]

# encoder.proto's Precision by name; "float32" is also what an unset precision means.
PrecisionName = Literal["float32", "int8", "uint8", "binary", "ubinary"]
Precision = PrecisionName | int
# {field: value | [values] | {"gte": x, "lte": y}}, or an ItemFilter message.
Where = Mapping[str, Any] | common_pb2.ItemFilter


def item_filter(where: Where | None) -> common_pb2.ItemFilter:
    """An ItemFilter from {field: value | [values] | {"gte": x, "lte": y}} (all must hold).

    `{"category": "film"}` is an equality, `{"tags": ["a", "b"]}` any of the values,
    `{"attributes.year": {"gte": 1970, "lte": 1979}}` a numeric range; a message passes through.
    """
    if isinstance(where, common_pb2.ItemFilter):
        return where
    result = common_pb2.ItemFilter()
    for name, test in (where or {}).items():
        condition = result.conditions.add(field=name)
        if isinstance(test, Mapping):
            condition.range.CopyFrom(common_pb2.NumericRange(**test))
        elif isinstance(test, list | tuple | set | frozenset):
            condition.any_of.values.extend(str(v) for v in test)
        else:
            condition.equals = str(test)
    return result


def precision_value(precision: Precision) -> encoder_pb2.Precision:
    """The Precision enum value of a name ("int8") or a value (encoder_pb2.PRECISION_INT8)."""
    if isinstance(precision, int):
        return cast(encoder_pb2.Precision, precision)  # an unknown value is the server's to refuse
    try:
        value = encoder_pb2.Precision.Value(f"PRECISION_{precision.upper()}")
    except ValueError:
        raise ValueError(f"unknown precision {precision!r}; one of float32, int8, uint8, binary, ubinary") from None
    return cast(encoder_pb2.Precision, value)


def embed_request(
    texts: Sequence[str],
    *,
    normalize: bool = True,
    dimensions: int = 0,
    truncate: bool = True,
    precision: Precision = "float32",
) -> encoder_pb2.EmbedRequest:
    """An Embed request (one element of an EmbedStream, too)."""
    return encoder_pb2.EmbedRequest(
        texts=list(texts),
        normalize=normalize,
        dimensions=dimensions,
        truncate=truncate,
        precision=precision_value(precision),
    )


def similar_items_request(
    item_id: str,
    limit: int,
    where: Where | None,
    exclude: Iterable[str],
    controls: recommender_pb2.FeedControls | None,
) -> recommender_pb2.SimilarItemsRequest:
    return recommender_pb2.SimilarItemsRequest(
        item_id=item_id, limit=limit, filter=item_filter(where), exclude_item_ids=list(exclude), controls=controls
    )


def for_you_request(
    user_id: str,
    limit: int,
    where: Where | None,
    exclude: Iterable[str],
    controls: recommender_pb2.FeedControls | None,
) -> recommender_pb2.ForYouRequest:
    return recommender_pb2.ForYouRequest(
        user_id=user_id, limit=limit, filter=item_filter(where), exclude_item_ids=list(exclude), controls=controls
    )


def search_items_request(
    text: str, limit: int, where: Where | None, exclude: Iterable[str]
) -> recommender_pb2.SearchItemsRequest:
    return recommender_pb2.SearchItemsRequest(
        text=text, limit=limit, filter=item_filter(where), exclude_item_ids=list(exclude)
    )


def feed_controls(
    *,
    weights: Mapping[str, float] | None = None,
    mmr_lambda: float | None = None,
    page_token: str = "",
    exclude_seen: bool | None = None,
    fresh_share: float | None = None,
) -> recommender_pb2.FeedControls:
    """Per-request feed controls; what is left out falls back to the service's settings."""
    controls = recommender_pb2.FeedControls(weights=dict(weights or {}), page_token=page_token)
    if mmr_lambda is not None:
        controls.mmr_lambda = mmr_lambda
    if exclude_seen is not None:
        controls.exclude_seen = exclude_seen
    if fresh_share is not None:
        controls.fresh_share = fresh_share
    return controls
