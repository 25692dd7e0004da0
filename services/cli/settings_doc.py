"""`recsys settings`: every RECSYS_* variable with its default and meaning, as a Markdown table."""

from __future__ import annotations

import argparse
import importlib

from pydantic import SecretStr
from pydantic_settings import BaseSettings

HELP = "print every RECSYS_* setting with its default and meaning (Markdown)"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    print(settings_markdown())
    return 0


# (section title, module, class); the services' classes only list what they add.
SETTINGS_CLASSES = [
    ("All services", "recsys.shared.settings", "ConnectionSettings"),
    ("Encoder, text role", "recsys.encoder.text.settings", "TextSettings"),
    ("Encoder, interactions role", "recsys.encoder.interactions.settings", "InteractionSettings"),
    (
        "Encoder, interactions role: cold items carried by content",
        "recsys.encoder.content_map_settings",
        "ContentMapSettings",
    ),
    (
        "Encoder, interactions role: sequence signal",
        "recsys.encoder.interactions.sequence_settings",
        "SequenceSettings",
    ),
    ("Encoder, either role: its server", "recsys.encoder.settings", "EncoderSettings"),
    (
        "ForYou blend: the recommender and the encoder's interactions role",
        "recsys.shared.blend_settings",
        "BlendSettings",
    ),
    ("Recommender", "recsys.recommender.settings", "RecommenderSettings"),
    ("Monitor", "recsys.monitor.settings", "MonitorSettings"),
]


def _default(settings: type[BaseSettings], name: str) -> str:
    field = settings.model_fields[name]
    if field.default_factory is not None:
        return "(per process)"
    value = field.default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return f"`{value}`" if value not in ("", None) else '`""`'


def settings_markdown() -> str:
    lines: list[str] = []
    shared: set[str] = set()
    for title, module, name in SETTINGS_CLASSES:
        settings: type[BaseSettings] = getattr(importlib.import_module(module), name)
        own = [f for f in settings.model_fields if f not in shared]
        shared.update(own)
        lines += [f"**{title}**", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        for field in own:
            doc = (settings.model_fields[field].description or "").replace("|", "\\|")
            lines.append(f"| `RECSYS_{field.upper()}` | {_default(settings, field)} | {doc} |")
        lines.append("")
    return "\n".join(lines)
