"""How much an interaction counts and how long it is remembered: event weights, half-lives, history bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from recsys.encoder.interactions.settings import InteractionSettings
from recsys.shared.events import Interaction, InteractionType, MalformedEvent

_DAY_S = 86_400.0
_MINUTE_S = 60.0


@dataclass(frozen=True)
class EventWeights:
    """Signed weight of an interaction: positive pulls toward the item, negative pushes away."""

    base: Mapping[InteractionType, float]
    rating_min: float = 0.5
    rating_max: float = 5.0
    rating_neutral: float = 3.0
    max_strength: float = 10.0

    @classmethod
    def from_settings(cls, settings: InteractionSettings) -> EventWeights:
        return cls(
            base=settings.event_weights(),
            rating_min=settings.rating_min,
            rating_max=settings.rating_max,
            rating_neutral=settings.rating_neutral,
            max_strength=settings.max_event_strength,
        )

    def weight(self, event: Interaction) -> float:
        """The event's weight; raises MalformedEvent for a rating or strength outside its range."""
        if event.type == InteractionType.RATE:
            if event.value is None:
                raise MalformedEvent(f"rate event {event.event_id} has no value (the rating)")
            if not self.rating_min <= event.value <= self.rating_max:
                raise MalformedEvent(
                    f"rate event {event.event_id} has rating {event.value},"
                    f" outside {self.rating_min}..{self.rating_max}"
                )
            return event.value - self.rating_neutral
        base = self.base[event.type]
        if event.value is None:
            return base
        if not 0 <= event.value <= self.max_strength:
            raise MalformedEvent(
                f"{event.type} event {event.event_id} has strength {event.value}, outside 0..{self.max_strength}"
            )
        return base * event.value


@dataclass(frozen=True)
class InteractionRules:
    """Half-lives (seconds) and bounds applied when an interaction updates a user and an item."""

    taste_half_life_s: float
    session_half_life_s: float
    behavior_half_life_s: float
    popularity_half_life_s: float
    history_size: int
    seen_size: int
    recent_events_size: int
    behavior_dims: int
    # Interactions of these types do not mark their item seen (repeat consumption: a re-buy may be recommended).
    repeatable_types: frozenset[InteractionType] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, settings: InteractionSettings) -> InteractionRules:
        return cls(
            taste_half_life_s=settings.taste_half_life_days * _DAY_S,
            session_half_life_s=settings.session_half_life_minutes * _MINUTE_S,
            behavior_half_life_s=settings.behavior_half_life_days * _DAY_S,
            popularity_half_life_s=settings.popularity_half_life_days * _DAY_S,
            history_size=settings.history_size,
            seen_size=settings.seen_size,
            recent_events_size=settings.recent_events_size,
            behavior_dims=settings.behavior_dims,
            repeatable_types=settings.repeatable_types(),
        )
