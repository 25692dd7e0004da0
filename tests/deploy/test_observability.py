"""The monitoring that ships in deploy/: alert rules promtool accepts and that fire on their stories, a
dashboard Grafana's own model reads without losing a field, and both wired into the production overlay."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.deploy.manifests import Manifest, find
from tests.deploy.observability import (
    dashboard,
    dashboard_queries,
    rule_queries,
    selectors,
    write_rule_file,
)

HERE = Path(__file__).resolve().parent


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is not on PATH: `make setup` installs Debian's prometheus package"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def test_alert_rules_pass_promtool_check(tmp_path: Path) -> None:
    result = promtool("check", "rules", str(write_rule_file(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_queries())} rules found" in result.stdout


def test_each_alert_fires_on_its_story_and_not_on_the_quiet_one(tmp_path: Path) -> None:
    write_rule_file(tmp_path)
    shutil.copy(HERE / "alert_rules_test.yaml", tmp_path / "test.yaml")
    result = promtool("test", "rules", str(tmp_path / "test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(\n")
    assert promtool("check", "rules", str(tmp_path / "rules.yaml")).returncode != 0


def _round_trip(data: dict[str, object]) -> dict[str, object]:
    register_default_plugins()  # panel options and Prometheus queries decode into their typed models
    decoded: dict[str, object] = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
    return decoded


def _lost(original: object, decoded: object, path: str = "") -> list[str]:
    """Where the decoded dashboard differs from the file: a field the model does not know is dropped."""
    if isinstance(original, dict):
        if not isinstance(decoded, dict):
            return [path]
        return [p for key, value in original.items() for p in _lost(value, decoded.get(key, _MISSING), f"{path}/{key}")]
    if isinstance(original, list):
        if not isinstance(decoded, list) or len(decoded) != len(original):
            return [path]
        return [p for i, (a, b) in enumerate(zip(original, decoded, strict=True)) for p in _lost(a, b, f"{path}[{i}]")]
    return [] if original == decoded else [path]


_MISSING = object()


def test_the_dashboard_loads_as_a_grafana_dashboard_model_without_losing_a_field() -> None:
    assert _lost(dashboard(), _round_trip(dashboard())) == []


def test_the_round_trip_notices_a_field_grafana_does_not_know() -> None:
    broken = dashboard()
    broken["panels"][1]["targets"][0]["expresion"] = "up"  # type: ignore[index]
    assert _lost(broken, _round_trip(broken)) == ["/panels[1]/targets[0]/expresion"]


def test_dashboard_panels_have_unique_ids_a_place_and_parseable_queries() -> None:
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    places = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels]
    assert len(places) == len(set(places))
    queries = dashboard_queries()
    assert all(selectors(expr) for expr in queries.values())  # promql_parser raises on a malformed query
    # The panels an on-call engineer opens first (the list).
    titles = {panel["title"] for panel in panels}
    for wanted in (
        "Feed latency p50 / p99",
        "Error rate per method",
        "Lag (entries not read yet)",
        "Pending (read, not acknowledged)",
        "Queue depth",
        "Texts per forward pass",
        "Ingestion rate",
        "Drift p-values",
        "Anomalies by kind",
    ):
        assert wanted in titles


def test_the_production_overlay_scrapes_every_metrics_port_and_loads_rules_and_dashboard(
    production: list[Manifest],
) -> None:
    monitor = find(production, "PodMonitor", "recsys")
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    assert set(monitor["spec"]["podTargetLabels"]) >= {"app", "role"}  # the rules group by them
    selected = monitor["spec"]["selector"]["matchLabels"]
    for name in ("encoder-text", "encoder-interactions", "recommender", "monitor"):
        pod = find(production, "Deployment", name)["spec"]["template"]
        assert selected.items() <= pod["metadata"]["labels"].items(), f"the PodMonitor misses {name}"
        ports = [p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])]
        assert "metrics" in ports, f"{name} has no port named metrics"
    rules = find(production, "PrometheusRule", "recsys")
    assert {r["alert"] for g in rules["spec"]["groups"] for r in g["rules"]} == set(rule_queries())
    configmap = find(production, "ConfigMap", "recsys-grafana-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["recsys-dashboard.json"]) == dashboard()


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (a) (rate(x_total[5m])) / on() group_left count(y offset 5m)", {"x_total", "y"}),
        ('histogram_quantile(0.9, sum by (le) (rate(h_bucket{s="a"}[1m]))) > 1', {"h_bucket"}),
        ("time() - max(t > 0) > 3 * max(i) and -z < 1", {"t", "i", "z"}),
    ],
)
def test_selectors_are_read_from_the_syntax_tree(expr: str, names: set[str]) -> None:
    assert {s.name for s in selectors(expr)} == names
