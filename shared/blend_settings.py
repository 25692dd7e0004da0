"""The ForYou blend's settings: the recommender ranks with them, the encoder's refresh tunes them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys.shared.blending import ForYouWeights


class BlendSettings(BaseSettings):
    """Every field can be set as RECSYS_<FIELD_NAME>; both services must see the same values."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    # The defaults: what `recsys eval` picked on MovieLens's validation split (README, Offline evaluation).
    # A deployment replaces them with its own once the refresh has enough events (blend_self_tuning).
    taste_weight: float = Field(0.2, ge=0, description="ForYou: weight of user taste · item content.")
    session_weight: float = Field(0.1, ge=0, description="ForYou: weight of user session · item content.")
    user_behavior_weight: float = Field(
        1.0, ge=0, description="ForYou: weight of user behavior · item behavior (cosine × the item's strength)."
    )
    popularity_weight: float = Field(0.02, ge=0, description="ForYou: weight of the item popularity prior.")
    sequence_weight: float = Field(
        0.3,
        ge=0,
        description="ForYou: weight of what followed the user's latest items in other users' histories (0..1 scaled).",
    )
    user_evidence_k: float = Field(
        1.0,
        gt=0,
        description="ForYou: a user with n interactions gives behavior n/(n+k) of its weight, taste the rest.",
    )
    fresh_gate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="ForYou: a fresh item takes a reserved fresh slot (RECSYS_FRESH_SHARE) of a personal feed only if"
        " its score is at least this fraction of the score of the item it displaces (0: always, the plain share;"
        " 1: only if it scores as well). The refresh's tuner replaces it with the gate its validation users choose.",
    )
    fresh_max_interactions: int = Field(
        3,
        ge=0,
        description="An item with fewer positive interactions than this counts as fresh (for the recommender, if it"
        " also entered the catalog within RECSYS_FRESH_MAX_AGE_DAYS); the refresh's tuner gates fresh slots by it.",
    )
    popularity_midpoint: float = Field(
        20.0, gt=0, description="The decayed popularity that gets a prior of 0.5; the prior is log-scaled into 0..1."
    )
    blend_self_tuning: bool = Field(
        True,
        description="Each behavior refresh chooses the ForYou weights on a time-ordered validation split of recent"
        " events and the recommender ranks with them (GetModelInfo shows them); false: always the weights above.",
    )
    blend_tuning_min_users: int = Field(
        50,
        ge=1,
        description="Fewer users with 6+ positive events than this: the refresh keeps the weights above.",
    )
    blend_tuning_max_users: int = Field(
        1000,
        ge=1,
        description="Most users the refresh scores when tuning (a seeded sample): bounds the time it adds.",
    )

    def for_you_weights(self) -> ForYouWeights:
        """The ForYou blend these settings give (before tuning and per-request overrides)."""
        return ForYouWeights(
            behavior=self.user_behavior_weight,
            taste=self.taste_weight,
            session=self.session_weight,
            popularity=self.popularity_weight,
            evidence_k=self.user_evidence_k,
            sequence=self.sequence_weight,
            fresh_gate=self.fresh_gate,
        )
