"""Settings of the encoder's interactions role: how interactions weigh and decay, and the behavior refresh."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from recsys.shared.events import InteractionType
from recsys.shared.settings import ConnectionSettings


class InteractionSettings(ConnectionSettings):
    """Every knob of the interactions role; each can be set as RECSYS_<FIELD> in the environment."""

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
    behavior_type_contrast: float = Field(
        1.0,
        ge=0,
        le=1,
        description="How much the interaction types' weights differ in the collaborative model: each type counts"
        " sign(w)·|w|^contrast of its weight w (1: as configured; 0: every positive type alike). Users' vectors keep"
        " the configured weights. With self-tuning on, each refresh chooses among 1, 0.5 and 0 on its validation"
        " users when the log holds types of different weights.",
    )
    rating_min: float = Field(0.5, description="Lowest rating a `rate` event may carry.")
    rating_max: float = Field(5.0, description="Highest rating a `rate` event may carry.")
    rating_neutral: float = Field(2.5, description="A rating's weight is (rating - rating_neutral).")
    max_event_strength: float = Field(
        10.0, gt=0, description="Largest `value` a non-rating event may carry as a strength multiplier."
    )

    repeatable_interaction_types: str = Field(
        "",
        description="Comma-separated interaction types that may repeat (e.g. `purchase` for consumables): an item"
        " a user engaged with only through these is not added to the user's seen list, so ForYou may recommend it"
        " again ('': none, every engaged item is seen).",
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
    # cpu by default: the interactions role then never imports torch (a small pod, no GPU node).
    behavior_device: str = Field(
        "cpu",
        description="Where the factorization runs: 'cpu' (scipy), 'cuda' (torch on the GPU), 'auto' (cuda when torch"
        " is installed and sees a GPU, else cpu).",
    )

    behavior_factorizer: Literal["in_process", "spark"] = Field(
        "in_process",
        description="Where the refresh fits the collaborative model: 'in_process' (behavior_device decides CPU or GPU)"
        " or 'spark' (RECSYS_SPARK_MASTER; needs the `spark` extra).",
    )
    spark_master: str = Field(
        "local[*]", description="Spark master the 'spark' behavior factorizer runs on (local[*], spark://host:7077)."
    )
    spark_shuffle_partitions: int = Field(
        8, ge=1, description="Partitions of the 'spark' behavior factorizer's shuffles and distributed matrix."
    )
    spark_export_dir: str = Field(
        "",
        description="Folder the 'spark' behavior factorizer exports the log's events to as Parquet; on a cluster,"
        " storage every executor reads ('': a local temporary folder, enough for local[*]).",
    )

    interaction_batch_size: int = Field(
        64,
        ge=1,
        description="Interactions applied together: one read and one write per batch for their items, the same for"
        " their users (1: one at a time). The role handles at least twice this many entries at once, so a batch"
        " gathers while the one before is written.",
    )

    interaction_ingest_group: str = Field(
        "encoder-interactions", description="Consumer group reading the interactions stream."
    )

    @field_validator("repeatable_interaction_types")
    @classmethod
    def _known_types(cls, value: str) -> str:
        parse_interaction_types(value)
        return value

    @model_validator(mode="after")
    def _rating_scale(self) -> InteractionSettings:
        if not self.rating_min <= self.rating_neutral <= self.rating_max:
            raise ValueError(
                f"rating_neutral {self.rating_neutral} must lie within rating_min {self.rating_min}"
                f" .. rating_max {self.rating_max}"
            )
        return self

    def repeatable_types(self) -> frozenset[InteractionType]:
        """The interaction types that do not mark an item seen."""
        return parse_interaction_types(self.repeatable_interaction_types)

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


def parse_interaction_types(names: str) -> frozenset[InteractionType]:
    """Comma-separated interaction type names; raises ValueError naming an unknown one."""
    kinds = set()
    for name in (part.strip() for part in names.split(",")):
        if not name:
            continue
        try:
            kinds.add(InteractionType(name))
        except ValueError:
            known = ", ".join(kind.value for kind in InteractionType)
            raise ValueError(f"unknown interaction type {name!r}; expected some of {known}") from None
    return frozenset(kinds)
