"""Settings of the recommender service: where it listens, request limits and the blend of signals."""

from __future__ import annotations

from pydantic import Field

from recsys.shared.blend_settings import BlendSettings
from recsys.shared.settings import ConnectionSettings


class RecommenderSettings(ConnectionSettings, BlendSettings):
    """Every field can be set as RECSYS_<FIELD_NAME>, for example RECSYS_MAX_LIMIT=200."""

    recommender_host: str = Field("0.0.0.0", description="Interface the gRPC server binds to.")
    recommender_port: int = Field(50052, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    recommender_health_port: int = Field(
        -1,
        ge=-1,
        le=65535,
        description="Port of a plaintext server with only gRPC health, for Kubernetes probes (they cannot speak"
        " TLS); -1 serves none, 0 picks a free one.",
    )
    recommender_metrics_port: int = Field(
        9092,
        ge=-1,
        le=65535,
        description="Prometheus /metrics port of the recommender; 0 picks a free one, -1 serves none.",
    )
    encoder_address: str = Field("127.0.0.1:50051", description="The encoder's gRPC address; SearchItems embeds there.")
    encoder_timeout_s: float = Field(5.0, gt=0, description="Longest SearchItems waits for the query embedding.")

    max_limit: int = Field(500, ge=1, description="Most items one request may ask for.")
    max_excluded_ids: int = Field(10_000, ge=0, description="Most ids one request may exclude.")
    max_query_chars: int = Field(2000, ge=1, description="Longest SearchItems text, in characters.")
    candidate_pool: int = Field(
        50,
        ge=1,
        description="Fewest candidates each signal fetches; it fetches max(this, candidate_pool_factor × limit).",
    )
    candidate_pool_factor: int = Field(
        4, ge=1, description="Each signal fetches this many candidates per requested item, before blending."
    )

    behavior_evidence_k: float = Field(
        10.0,
        gt=0,
        description="SimilarItems: an item with n interactions gives behavior the weight n/(n+k), content the rest.",
    )
    mmr_lambda: float = Field(
        1.0, ge=0, le=1, description="Default MMR trade-off: 1 ranks by score alone, lower values favour diversity."
    )
    exclude_seen: bool = Field(True, description="ForYou leaves out the items the user has already interacted with.")
    fresh_share: float = Field(
        0.1, ge=0, le=1, description="Share of feed slots reserved for fresh items (cold users' feeds included)."
    )
    # fresh_max_interactions is a blend setting (shared/blend_settings.py): the encoder's tuner reads it too.
    fresh_max_age_days: float = Field(
        14.0,
        gt=0,
        description="A fresh item (RECSYS_FRESH_MAX_INTERACTIONS) entered the catalog at most this long ago.",
    )
    max_page_depth: int = Field(1000, ge=1, description="Most items one feed may page through (page tokens included).")
    popularity_half_life_days: float = Field(
        7.0, gt=0, description="Stored popularity is decayed to now with this half-life (match the encoder's)."
    )

    def pool_size(self, limit: int) -> int:
        """How many candidates each signal fetches for a request of `limit` items."""
        return max(self.candidate_pool, self.candidate_pool_factor * limit)
