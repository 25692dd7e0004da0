"""The README documents every RECSYS_* setting the services read."""

from __future__ import annotations

import importlib
from pathlib import Path

from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = [
    ("recsys.shared.settings", "ConnectionSettings"),
    ("recsys.encoder.settings", "EncoderSettings"),
    ("recsys.recommender.settings", "RecommenderSettings"),
    ("recsys.monitor.settings", "MonitorSettings"),
]


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = []
    for module, name in SETTINGS:
        settings: type[BaseSettings] = getattr(importlib.import_module(module), name)
        for field in settings.model_fields:
            if f"RECSYS_{field.upper()}" not in readme:
                missing.append(f"RECSYS_{field.upper()} ({name})")
    assert not missing, f"README lacks: {missing}"


def test_readme_shows_both_quick_start_commands_that_exist_in_the_makefile() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in readme
        assert f"\n{target}:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
