"""Settings of the encoder's text role: the model, dynamic batching, request limits and item ingestion."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recsys.shared.settings import ConnectionSettings


class TextSettings(ConnectionSettings):
    """Every knob of the text role; each can be set as RECSYS_<FIELD> in the environment."""

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
    max_text_chars: int = Field(
        65_536,
        ge=256,
        description="Longest text, in characters, refused (INVALID_ARGUMENT) before it is tokenized; the model"
        " reads at most its max tokens of any text anyway.",
    )
    item_ingest_concurrency: int = Field(
        256,
        ge=1,
        description="Item entries handled at once; their texts wait together, so passes group texts of like length.",
    )

    item_ingest_group: str = Field("encoder-items", description="Consumer group reading the items stream.")
