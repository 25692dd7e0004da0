"""Settings of ForYou's sequence signal on the encoder's side: the successor lists the behavior refresh writes."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys.shared import successors


class SequenceSettings(BaseSettings):
    """Every field can be set as RECSYS_<FIELD_NAME>."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    behavior_successors: int = Field(
        successors.KEEP,
        ge=0,
        description="Successors kept per item for ForYou's sequence signal (what followed it in users' histories);"
        " 0: none",
    )
