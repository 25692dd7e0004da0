"""recsys_client: the light Python client of recsys (grpcio and protobuf only).

Blocking clients (`EncoderClient`, `RecommenderClient`, `MonitorClient`) and their asyncio twins
(`Async…`, also as `recsys_client.aio.EncoderClient` …) cover every RPC of recsys.v1; the event
publishers put catalog changes and interactions on the input streams; `ChannelSecurity` sets TLS,
mTLS and a bearer token. The generated protobuf and gRPC code is `recsys_client.api`.
"""

from recsys_client.aio import EncoderClient as AsyncEncoderClient
from recsys_client.aio import MonitorClient as AsyncMonitorClient
from recsys_client.aio import RecommenderClient as AsyncRecommenderClient
from recsys_client.credentials import CredentialsError
from recsys_client.messages import embed_request, feed_controls, item_filter
from recsys_client.publisher import AsyncEventPublisher, EventPublisher
from recsys_client.security import ChannelSecurity
from recsys_client.sync import EncoderClient, MonitorClient, RecommenderClient

__all__ = [
    "AsyncEncoderClient",
    "AsyncEventPublisher",
    "AsyncMonitorClient",
    "AsyncRecommenderClient",
    "ChannelSecurity",
    "CredentialsError",
    "EncoderClient",
    "EventPublisher",
    "MonitorClient",
    "RecommenderClient",
    "embed_request",
    "feed_controls",
    "item_filter",
]
