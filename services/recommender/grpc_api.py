"""The gRPC face of the recommender: recsys.v1.RecommenderService requests to feeds and back."""

from __future__ import annotations

import asyncio

import grpc

from recsys.recommender.feeds import FeedControls, Feeds
from recsys.recommender.filters import Condition, ItemFilter, NumericRange
from recsys.recommender.recommendations import Feed
from recsys.shared.errors import InvalidRequest, Unavailable
from recsys.shared.grpc_server import maps_errors
from recsys_client.api import common_pb2, recommender_pb2, recommender_pb2_grpc

SERVICE_NAME = recommender_pb2.DESCRIPTOR.services_by_name["RecommenderService"].full_name


def item_filter_from_proto(message: common_pb2.ItemFilter) -> ItemFilter:
    """The domain filter; a condition without an operator, or any other invalid one, is InvalidRequest."""
    conditions = []
    for position, condition in enumerate(message.conditions):
        operator = condition.WhichOneof("operator")
        if operator is None:
            raise InvalidRequest(
                f"filter condition {position} on {condition.field!r} sets no operator: set equals, any_of or range"
            )
        if operator == "equals":
            conditions.append(Condition(condition.field, equals=condition.equals))
        elif operator == "any_of":
            conditions.append(Condition(condition.field, any_of=tuple(condition.any_of.values)))
        else:
            bounds = condition.range
            conditions.append(
                Condition(
                    condition.field,
                    range=NumericRange(
                        gte=bounds.gte if bounds.HasField("gte") else None,
                        lte=bounds.lte if bounds.HasField("lte") else None,
                    ),
                )
            )
    return ItemFilter(tuple(conditions))


def controls_from_proto(message: recommender_pb2.FeedControls) -> FeedControls:
    """The domain controls; unset optional fields fall back to the service's settings."""
    return FeedControls(
        weights=dict(message.weights),
        mmr_lambda=message.mmr_lambda if message.HasField("mmr_lambda") else None,
        page_token=message.page_token,
        exclude_seen=message.exclude_seen if message.HasField("exclude_seen") else None,
        fresh_share=message.fresh_share if message.HasField("fresh_share") else None,
    )


def _scored_items(feed: Feed) -> list[common_pb2.ScoredItem]:
    return [
        common_pb2.ScoredItem(
            item_id=item.item_id,
            score=item.score,
            score_parts=item.score_parts,
            title=item.title,
            category=item.category,
        )
        for item in feed.items
    ]


class RecommenderServicer(recommender_pb2_grpc.RecommenderServiceServicer):
    """Refuses calls with UNAVAILABLE until `ready` is set (the store and its collections exist)."""

    def __init__(self, feeds: Feeds, ready: asyncio.Event) -> None:
        self._feeds = feeds
        self._ready = ready

    def _check_ready(self) -> None:
        if not self._ready.is_set():
            raise Unavailable("recommender is not ready: waiting for the vector store and its collections")

    @maps_errors
    async def SimilarItems(
        self, request: recommender_pb2.SimilarItemsRequest, context: grpc.aio.ServicerContext
    ) -> recommender_pb2.SimilarItemsResponse:
        self._check_ready()
        feed = await self._feeds.similar_items(
            request.item_id,
            request.limit,
            item_filter_from_proto(request.filter),
            request.exclude_item_ids,
            controls_from_proto(request.controls),
        )
        return recommender_pb2.SimilarItemsResponse(
            items=_scored_items(feed), strategy=feed.strategy.value, next_page_token=feed.next_page_token
        )

    @maps_errors
    async def ForYou(
        self, request: recommender_pb2.ForYouRequest, context: grpc.aio.ServicerContext
    ) -> recommender_pb2.ForYouResponse:
        self._check_ready()
        feed = await self._feeds.for_you(
            request.user_id,
            request.limit,
            item_filter_from_proto(request.filter),
            request.exclude_item_ids,
            controls_from_proto(request.controls),
        )
        return recommender_pb2.ForYouResponse(
            items=_scored_items(feed), strategy=feed.strategy.value, next_page_token=feed.next_page_token
        )

    @maps_errors
    async def SearchItems(
        self, request: recommender_pb2.SearchItemsRequest, context: grpc.aio.ServicerContext
    ) -> recommender_pb2.SearchItemsResponse:
        self._check_ready()
        feed = await self._feeds.search_items(
            request.text, request.limit, item_filter_from_proto(request.filter), request.exclude_item_ids
        )
        return recommender_pb2.SearchItemsResponse(items=_scored_items(feed), strategy=feed.strategy.value)
