"""The encoder's settings: both roles' and the server they share (gRPC, health and metrics ports)."""

from __future__ import annotations

from pydantic import Field

from recsys.encoder.content_map_settings import ContentMapSettings
from recsys.encoder.interactions.sequence_settings import SequenceSettings
from recsys.encoder.interactions.settings import InteractionSettings
from recsys.encoder.text.settings import TextSettings
from recsys.shared.blend_settings import BlendSettings


class EncoderSettings(TextSettings, InteractionSettings, ContentMapSettings, SequenceSettings, BlendSettings):
    """Every knob of the encoder; each can be set as RECSYS_<FIELD> in the environment.

    A process runs one role or both (`recsys run encoder --role`); each role reads only its own
    settings class, so the interactions role never needs the text role's modules.
    """

    encoder_host: str = Field("0.0.0.0", description="Interface the gRPC server binds.")
    encoder_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one (tests).")
    encoder_health_port: int = Field(
        -1,
        ge=-1,
        le=65535,
        description="Port of a plaintext server with only gRPC health, for Kubernetes probes (they cannot speak"
        " TLS); -1 serves none, 0 picks a free one.",
    )
    encoder_metrics_port: int = Field(
        9091,
        ge=-1,
        le=65535,
        description="Prometheus /metrics port of the encoder; 0 picks a free one, -1 serves none.",
    )
