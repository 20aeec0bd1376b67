"""Kubernetes NetworkPolicy semantics, as plain code: may a connection from one endpoint reach a pod's port?

The rules of the API (networking.k8s.io/v1): a pod selected by no policy of a direction is open in that
direction; a pod selected by some is open only to what one of their rules admits; a connection needs the
source's egress and the destination's ingress. A rule without ``from`` / ``to`` admits every peer, without
``ports`` every port; a peer with ``podSelector`` alone means pods of the policy's namespace, with
``namespaceSelector`` those namespaces (both: the pods they select there); named ports are the destination
container's port names. ``ipBlock`` peers are taken to match every endpoint, pods included (what happens to pod
addresses is up to the network plugin: the worst case is assumed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """A pod (``namespace``, ``labels``, container ``ports`` by name) or something outside the cluster."""

    name: str
    namespace: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector (``matchLabels`` and ``matchExpressions``); an empty one selects everything."""
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        return True
    if not other.is_pod:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": str(other.namespace)}):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector"), other.labels)


def _port_matches(rule_ports: list[Mapping[str, Any]] | None, destination: Endpoint, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        number = destination.ports.get(wanted) if isinstance(wanted, str) else wanted
        end = entry.get("endPort", number)
        if number is not None and number <= port <= end:
            return True
    return False


def _direction_allows(policies: Iterable[Mapping[str, Any]], kind: str, selected: Endpoint, other: Endpoint,
                      destination: Endpoint, port: int, protocol: str) -> bool:
    """Whether the policies of ``selected``'s namespace let ``selected`` take this connection in ``kind``
    ("Ingress": from ``other``; "Egress": to ``other``)."""
    if not selected.is_pod:
        return True  # outside the cluster: not policed here
    mine = [p for p in policies if p["metadata"]["namespace"] == selected.namespace
            and kind in p["spec"].get("policyTypes", ["Ingress"]) and selects(p["spec"]["podSelector"], selected.labels)]
    if not mine:
        return True
    key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for policy in mine:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if peers and not any(_peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers):
                continue
            if _port_matches(rule.get("ports"), destination, port, protocol):
                return True
    return False


def allowed(policies: list[Mapping[str, Any]], source: Endpoint, destination: Endpoint, port: int,
            protocol: str = "TCP") -> bool:
    return (_direction_allows(policies, "Egress", source, destination, destination, port, protocol)
            and _direction_allows(policies, "Ingress", destination, source, destination, port, protocol))
