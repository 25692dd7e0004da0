"""NetworkPolicy semantics, enough to ask the rendered manifests "may this pod open that port on that one?"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.deploy.manifests import Manifest, of_kind


@dataclass(frozen=True)
class Pod:
    labels: dict[str, str]
    namespace: str = ""  # "" : the system's own namespace
    namespace_labels: dict[str, str] = field(default_factory=dict)


def _label_selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def _peer_matches(peer: dict[str, Any], pod: Pod) -> bool:
    if "ipBlock" in peer:
        return False  # the system's pods are addressed by labels, never by IP
    if "namespaceSelector" in peer:
        if not _label_selector_matches(peer["namespaceSelector"], pod.namespace_labels):
            return False
    elif pod.namespace:
        return False  # a peer without namespaceSelector means the policy's own namespace
    return _label_selector_matches(peer.get("podSelector", {}), pod.labels)


def _port_listed(rule: dict[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(entry.get("port") == port for entry in ports)


def _admits(policies: list[Manifest], direction: str, pod: Pod, other: Pod, port: int) -> bool:
    """Whether the policies selecting `pod` let traffic of this direction through to/from `other`."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    if pod.namespace:
        return True  # pods outside the namespace are governed by their own policies
    selecting = [
        p
        for p in policies
        if direction in p["spec"].get("policyTypes", ["Ingress"])
        and _label_selector_matches(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(peer, other) for peer in peers)) and _port_listed(rule, port):
                return True
    return False


def may_connect(documents: list[Manifest], source: Pod, target: Pod, port: int) -> bool:
    """Both ends' policies allow `source` to open `port` on `target`."""
    policies = of_kind(documents, "NetworkPolicy")
    return _admits(policies, "Egress", source, target, port) and _admits(policies, "Ingress", target, source, port)


def selected_by_own_policy(documents: list[Manifest], labels: dict[str, str]) -> list[str]:
    """Names of the policies that select pods with these labels other than one selecting every pod."""
    return [
        p["metadata"]["name"]
        for p in of_kind(documents, "NetworkPolicy")
        if p["spec"]["podSelector"] and _label_selector_matches(p["spec"]["podSelector"], labels)
    ]
