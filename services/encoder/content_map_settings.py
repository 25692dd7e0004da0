"""Settings of the content map: cold items carried in the behavior space by their content (content_map.py)."""

from __future__ import annotations

from pydantic import Field

from recsys.shared.settings import ConnectionSettings


class ContentMapSettings(ConnectionSettings):
    """Knobs of the map the behavior refresh learns from content to behavior vectors; RECSYS_<FIELD> each."""

    behavior_content_map: bool = Field(
        True,
        description="At each behavior refresh, learn a map from content to behavior vectors on warm items and give"
        " every item with content a behavior vector (items with few interactions mostly the inferred one); a new"
        " item gets its inferred vector from its first item.upserted. Off: only interacted items have one.",
    )
    behavior_item_evidence_k: float = Field(
        3.0,
        ge=0,
        description="An item with n interactions (distinct users in the behavior log) keeps n/(n+k) of its observed"
        " behavior vector and takes the rest from its content (the rule of RECSYS_BEHAVIOR_EVIDENCE_K; 0: observed"
        " vectors are kept as they are). Default: the content map's minimum evidence, so an item is half its own"
        " exactly where its interactions start to be trusted to teach the map. With blend self-tuning on, each"
        " refresh chooses k among 0, 1, 3, 10 on its validation split; this is the tie-break and what runs untuned.",
    )
    behavior_content_min_evidence: int = Field(
        3,
        ge=1,
        description="Items with at least this many interactions teach the content map (fewer: too noisy to learn"
        " from, carried by it instead).",
    )
