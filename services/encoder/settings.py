"""The encoder's settings: model, dynamic batching, request limits and the interaction-to-vector rules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recsys.shared.events import InteractionType
from recsys.shared.settings import ConnectionSettings


class EncoderSettings(ConnectionSettings):
    """Every knob of the encoder; each can be set as RECSYS_<FIELD> in the environment."""

    encoder_host: str = Field("0.0.0.0", description="Interface the gRPC server binds.")
    encoder_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one (tests).")

    model: str = Field(
        "", description="sentence-transformers model path or name; empty uses the shipped all-MiniLM-L6-v2."
    )
    device: str = Field(
        "auto", description="Torch device: 'auto' (cuda when present, else cpu), 'cpu', 'cuda', 'cuda:1'."
    )
    max_tokens: int = Field(0, ge=0, description="Longest input in tokens; 0 means the model's max_seq_length.")
    cuda_dtype: Literal["float16", "bfloat16", "float32"] = Field(
        "float16", description="Weight precision on CUDA: float16, bfloat16 or float32 (CPU always runs float32)."
    )
    torch_threads: int = Field(0, ge=0, description="Torch CPU threads; 0 keeps torch's default (one per core).")
    int8_calibration_file: str = Field(
        "",
        description="Texts (one per line) whose embeddings set the int8/uint8 output ranges; empty uses built-in"
        " varied texts.",
    )

    batch_max_size: int = Field(64, ge=1, description="Most texts in one forward pass of the model.")
    batch_max_tokens: int = Field(
        8192, ge=1, description="Most padded tokens (texts x longest text) in one forward pass of the model."
    )
    batch_max_wait_ms: float = Field(
        5.0,
        ge=0,
        description="Longest the oldest waiting text waits for its pass to fill, and only while other texts keep"
        " arriving.",
    )
    batch_bulk_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Least share of model time stream ingestion (bulk lane) gets while gRPC calls (live lane) also"
        " wait.",
    )
    batch_live_pass_ms: float = Field(
        5.0,
        ge=0,
        description="While gRPC calls are active, bulk passes are planned so that a live text waits about this long"
        " at most behind one: for its next layer (a live pass runs there), or for its end if it cannot be"
        " interrupted; 0 never cuts them.",
    )
    batch_live_grace_ms: float = Field(
        2.0,
        ge=0,
        description="After a live pass, bulk work waits this long for the live caller's next text (unless bulk is"
        " owed its share); 0 never waits.",
    )
    queue_capacity: int = Field(
        4096,
        ge=1,
        description="Most texts waiting per lane (live, bulk); beyond it calls are refused (RESOURCE_EXHAUSTED).",
    )
    max_texts_per_request: int = Field(1024, ge=1, description="Most texts in one Embed call.")
    encoder_metrics_port: int = Field(
        9091,
        ge=-1,
        le=65535,
        description="Prometheus /metrics port of the encoder; 0 picks a free one, -1 serves none.",
    )
    item_ingest_concurrency: int = Field(
        256,
        ge=1,
        description="Item entries handled at once; their texts wait together, so passes group texts of like length.",
    )

    taste_half_life_days: float = Field(30.0, gt=0, description="Half-life of a user's long-term taste vector.")
    session_half_life_minutes: float = Field(30.0, gt=0, description="Half-life of a user's session vector.")
    behavior_half_life_days: float = Field(
        90.0, gt=0, description="Half-life of who-engaged-with-what in the collaborative behavior space."
    )
    popularity_half_life_days: float = Field(7.0, gt=0, description="Half-life of an item's popularity.")

    weight_view: float = Field(0.5, description="Weight of a view.")
    weight_click: float = Field(1.0, description="Weight of a click.")
    weight_add_to_cart: float = Field(2.0, description="Weight of an add-to-cart.")
    weight_purchase: float = Field(4.0, description="Weight of a purchase.")
    weight_like: float = Field(3.0, description="Weight of a like.")
    weight_dislike: float = Field(-3.0, description="Weight of a dislike (negative: it pushes vectors away).")
    rating_min: float = Field(0.5, description="Lowest rating a `rate` event may carry.")
    rating_max: float = Field(5.0, description="Highest rating a `rate` event may carry.")
    rating_neutral: float = Field(2.5, description="A rating's weight is (rating - rating_neutral).")
    max_event_strength: float = Field(
        10.0, gt=0, description="Largest `value` a non-rating event may carry as a strength multiplier."
    )

    history_size: int = Field(100, ge=1, description="Interactions kept in a user's history (newest win).")
    seen_size: int = Field(500, ge=1, description="Item ids kept in a user's seen list (newest win).")
    recent_events_size: int = Field(
        500, ge=1, description="Event ids kept per user and per item to recognise replayed interactions."
    )

    behavior_refresh_interactions: int = Field(
        10_000, ge=0, description="Refit the collaborative model after this many new interactions (0: by time only)."
    )
    behavior_refresh_interval_s: float = Field(
        600.0, gt=0, description="Refit the collaborative model this often when any interaction arrived since the last."
    )
    behavior_model_half_life_days: float = Field(
        0.0,
        ge=0,
        description="Half-life of an interaction in the factorized matrix, relative to its user's latest (0: none).",
    )
    behavior_log_size: int = Field(
        1_000_000, ge=1000, description="Interactions kept (approximately) in the log the behavior model is fit on."
    )
    behavior_refresh_batch: int = Field(256, ge=1, description="Points written per batch by a behavior refresh.")
    behavior_device: str = Field(
        "auto", description="Where the factorization runs: 'auto' (cuda when present, else cpu), 'cpu', 'cuda'."
    )

    item_ingest_group: str = Field("encoder-items", description="Consumer group reading the items stream.")
    interaction_ingest_group: str = Field(
        "encoder-interactions", description="Consumer group reading the interactions stream."
    )

    @model_validator(mode="after")
    def _rating_scale(self) -> EncoderSettings:
        if not self.rating_min <= self.rating_neutral <= self.rating_max:
            raise ValueError(
                f"rating_neutral {self.rating_neutral} must lie within rating_min {self.rating_min}"
                f" .. rating_max {self.rating_max}"
            )
        return self

    def event_weights(self) -> dict[InteractionType, float]:
        """The base weight of every interaction type except `rate`, whose weight comes from its rating."""
        return {
            InteractionType.VIEW: self.weight_view,
            InteractionType.CLICK: self.weight_click,
            InteractionType.ADD_TO_CART: self.weight_add_to_cart,
            InteractionType.PURCHASE: self.weight_purchase,
            InteractionType.LIKE: self.weight_like,
            InteractionType.DISLIKE: self.weight_dislike,
        }
