"""The monitoring artifacts read as data: the dashboard's and the alert rules' queries, and the metric names
each query reads (from PromQL's syntax tree, not a pattern)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from tests.deploy.manifests import DEPLOY_DIR

DASHBOARD = DEPLOY_DIR / "components" / "grafana-dashboard" / "recsys-dashboard.json"
ALERT_RULES = DEPLOY_DIR / "components" / "prometheus-operator" / "alert-rules.yaml"
# Grafana fills these in before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "2m", "$__interval": "30s", "$__range": "1h"}
# Series Prometheus itself makes for each target, not exported by anyone.
MADE_BY_PROMETHEUS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_queries() -> dict[str, str]:
    """Every panel query by "panel title / refId", with Grafana's variables filled in."""
    queries = {}
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries[f"{panel['title']} / {target['refId']}"] = expr
    return queries


def alert_rules_spec() -> dict[str, Any]:
    """The PrometheusRule's spec: a Prometheus rule file's content."""
    spec: dict[str, Any] = yaml.safe_load(ALERT_RULES.read_text())["spec"]
    return spec


def write_rule_file(folder: Path) -> Path:
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump(alert_rules_spec()))
    return path


def rule_queries() -> dict[str, str]:
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in alert_rules_spec()["groups"]
        for rule in group["rules"]
    }


# Labels the scrape adds (from the PodMonitor's podTargetLabels and Prometheus's own), not the service.
TARGET_LABELS = {"app", "role", "pod", "namespace", "container", "job", "instance"}


@dataclass(frozen=True)
class Selector:
    """One series selector of a query: a metric name and the label conditions on what the service exports."""

    name: str
    conditions: tuple[tuple[str, str, str], ...]  # (label, operator, value)

    def answered_by(self, name: str, labels: dict[str, str]) -> bool:
        """True when the sample is one this selector asks for: an equality names a series that must exist;
        other operators filter values that come and go (status codes), so the label being there is enough."""
        if name != self.name:
            return False
        return all(
            _holds(labels.get(label, ""), op, value) if op == "=" else label in labels
            for label, op, value in self.conditions
        )

    def __str__(self) -> str:
        return self.name + "{" + ", ".join(f'{label}{op}"{value}"' for label, op, value in self.conditions) + "}"


def _holds(actual: str, op: str, value: str) -> bool:
    return {
        "=": actual == value,
        "!=": actual != value,
        "=~": re.fullmatch(value, actual) is not None,
        "!~": re.fullmatch(value, actual) is None,
    }[op]


_OPERATORS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def selectors(expr: str) -> list[Selector]:
    """The series selectors of a PromQL expression, from its syntax tree."""
    found: list[Selector] = []
    pending: list[Any] = [promql_parser.parse(expr)]
    while pending:
        node = pending.pop()
        if isinstance(node, promql_parser.VectorSelector):
            conditions = tuple(
                (m.name, _OPERATORS[str(m.op).rsplit(".", 1)[-1]], m.value)
                for m in node.matchers.matchers
                if m.name != "__name__" and m.name not in TARGET_LABELS
            )
            found.append(Selector(str(node.name), conditions))
            continue
        for child in ("lhs", "rhs", "expr", "param", "vector_selector"):
            if getattr(node, child, None) is not None:
                pending.append(getattr(node, child))
        pending.extend(getattr(node, "args", None) or [])
    return found


def used_selectors() -> set[Selector]:
    """Every series selector of the dashboard and the alert rules that a recsys service must answer."""
    return {
        selector
        for expr in [*dashboard_queries().values(), *rule_queries().values()]
        for selector in selectors(expr)
        if selector.name not in MADE_BY_PROMETHEUS
    }
