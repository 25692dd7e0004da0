"""Fixtures of the deployment tests: the base and the production overlay, rendered once per session."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import DEPLOY_DIR, Manifest, render


@pytest.fixture(scope="session")
def base() -> list[Manifest]:
    return render(DEPLOY_DIR / "base")


@pytest.fixture(scope="session")
def production() -> list[Manifest]:
    return render(DEPLOY_DIR / "overlays" / "production")


@pytest.fixture(scope="session")
def one_node() -> list[Manifest]:
    return render(DEPLOY_DIR / "overlays" / "one-node")


@pytest.fixture(scope="session", params=["base", "production", "one_node"])
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    """Each rendering in turn, for properties both must have."""
    documents: list[Manifest] = request.getfixturevalue(request.param)
    return documents
