"""Prometheus metrics of the text role: queues, passes (size, padding, time), tokens, latency, refusals.

Rates (tokens/s, texts/s) are the dashboard's rate() of the counters, not gauges kept here.
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from recsys.encoder.text.batching import DynamicBatcher, Lane

_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class TextMetrics:
    """The text role's metrics in its service's registry; implements the batcher's and the engine's observers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queue = Gauge("recsys_encoder_queue_texts", "Texts waiting for the model", ["lane"], registry=registry)
        self.pass_texts = Histogram(
            "recsys_encoder_pass_texts", "Texts per forward pass", ["lane"], buckets=_SIZE_BUCKETS, registry=registry
        )
        self.pass_seconds = Histogram(
            "recsys_encoder_pass_seconds",
            "Model time per forward pass",
            ["lane"],
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )
        self.padding_waste = Histogram(
            "recsys_encoder_padding_waste_ratio",
            "Share of a pass's padded tokens that are padding",
            ["lane"],
            buckets=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9),
            registry=registry,
        )
        self.texts = Counter("recsys_encoder_texts", "Texts embedded", ["lane"], registry=registry)
        self.tokens = Counter("recsys_encoder_tokens", "Tokens the model read", ["lane"], registry=registry)
        self.padded_tokens = Counter(
            "recsys_encoder_padded_tokens", "Tokens the model ran, padding included", ["lane"], registry=registry
        )
        self.request_seconds = Histogram(
            "recsys_encoder_request_seconds",
            "Time from a request's arrival to its embeddings (tokenize, queue, model, shape)",
            ["lane"],
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )
        self.refused = Counter(
            "recsys_encoder_requests_refused",
            "Requests refused: invalid (bad input) or overloaded (queue full)",
            ["lane", "reason"],
            registry=registry,
        )
        for lane in Lane:  # at 0 from the start, so increase() (and the overload alert) sees the first refusal
            for reason in ("invalid", "overloaded"):
                self.refused.labels(lane.name.lower(), reason)
        self.dropped = Counter(
            "recsys_encoder_texts_dropped",
            "Texts dropped before inference: caller_gone or deadline",
            ["lane", "reason"],
            registry=registry,
        )
        self.ingest_seconds = Histogram(
            "recsys_encoder_item_stage_seconds",
            "Time an item entry spends per stage: embed (queue and model), store (Qdrant), notice",
            ["stage"],
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )
        self.pass_fixed_seconds = Gauge(
            "recsys_encoder_pass_fixed_seconds",
            "Learned cost of a forward pass whatever its size (passes are planned with it)",
            registry=registry,
        )
        self.pass_token_seconds = Gauge(
            "recsys_encoder_pass_token_seconds",
            "Learned cost of one padded token in a forward pass",
            registry=registry,
        )
        self.nested_passes = Counter(
            "recsys_encoder_live_passes_nested",
            "Live passes run between the layers of a bulk pass instead of waiting for it to end",
            registry=registry,
        )
        self.warm_up_seconds = Gauge("recsys_encoder_warm_up_seconds", "Time the warm-up took", registry=registry)

    def watch_batcher(self, batcher: DynamicBatcher[Any]) -> None:
        """Reports queue depths and the pass cost model as the batcher says at scrape time."""
        for lane in Lane:
            self.queue.labels(lane.name.lower()).set_function(functools.partial(batcher.waiting_in, lane))
        self.pass_fixed_seconds.set_function(lambda: batcher.cost.estimate.fixed_s)
        self.pass_token_seconds.set_function(lambda: batcher.cost.estimate.per_token_s)

    def pass_done(self, lane: Lane, texts: int, tokens: int, padded_tokens: int, seconds: float) -> None:
        name = lane.name.lower()
        self.pass_texts.labels(name).observe(texts)
        self.pass_seconds.labels(name).observe(seconds)
        self.padding_waste.labels(name).observe(1.0 - tokens / padded_tokens if padded_tokens else 0.0)
        self.texts.labels(name).inc(texts)
        self.tokens.labels(name).inc(tokens)
        self.padded_tokens.labels(name).inc(padded_tokens)

    def live_pass_nested(self) -> None:
        self.nested_passes.inc()

    def texts_dropped(self, lane: Lane, reason: str, texts: int) -> None:
        self.dropped.labels(lane.name.lower(), reason).inc(texts)

    def request_done(self, lane: Lane, seconds: float) -> None:
        self.request_seconds.labels(lane.name.lower()).observe(seconds)

    def request_refused(self, lane: Lane, reason: str) -> None:
        self.refused.labels(lane.name.lower(), reason).inc()

    def stage_done(self, stage: str, seconds: float) -> None:
        self.ingest_seconds.labels(stage).observe(seconds)
