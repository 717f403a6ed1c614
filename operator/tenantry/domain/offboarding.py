"""Stop serving before letting go: what offboarding, cancelling and suspending do to a tenant (pure).

A tenant that leaves (deleted with deletionPolicy Retain, or Cancelled) keeps its data (namespace,
volumes, ConfigMaps, Secrets) but stops serving: its routes (Ingress, Certificates) and its admins'
access go, its Deployments and StatefulSets are scaled to 0, its pods are deleted, and the quota
(pods: 0) refuses new ones. A domain claim is released only once no Ingress of the tenant routes
that domain any more, so nobody else can claim a host that is still served from here.

Suspended (decided here): pods are deleted and the quota refuses new ones, but the replica counts,
routes, domain claims and admin access stay, so reactivating restores the service by itself (the
controllers recreate the pods once the quota allows them) and nobody can take over the domain
meanwhile. A suspended domain's route answers with no backend (HTTP 503): nothing is served.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tenantry.domain import naming
from tenantry.domain.dns import CLAIMED_DOMAIN_ANNOTATION

# Workload kinds whose replica count is set to 0 when a tenant leaves (the only ones with a `replicas`).
SCALED_KINDS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"))
# How long a stopped pod may take to shut down: a tenant admin chooses terminationGracePeriodSeconds,
# and a pod that ignores SIGTERM under a grace of years would run on, the tenant suspended or gone.
STOP_GRACE_SECONDS = 30


@dataclass(frozen=True)
class Stop:
    """What stops a tenant's workloads: (kind, name, resourceVersion) to scale to 0, pod names to delete."""

    scale: tuple[tuple[str, str, str], ...]
    delete_pods: tuple[str, ...]


def stop_workloads(workloads: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]], scale: bool) -> Stop:
    """Scale-downs (only with `scale`, and only where replicas are not already 0) and pod deletions
    (with at most STOP_GRACE_SECONDS to shut down: pods not terminating yet, and pods terminating with
    a longer grace). Nothing when everything is stopped: a repeated pass writes nothing."""
    to_scale = tuple((w["kind"], w["metadata"]["name"], w["metadata"].get("resourceVersion", ""))
                     for w in workloads if scale and (w.get("spec") or {}).get("replicas", 1) != 0)
    to_delete = tuple(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")
                      or _grace(p["metadata"].get("deletionGracePeriodSeconds")) > STOP_GRACE_SECONDS)
    return Stop(to_scale, to_delete)


def _grace(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def routed_hosts(ingresses: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every host any of these Ingresses routes (rules and TLS), terminating or not."""
    hosts: set[str] = set()
    for ingress in ingresses:
        spec = ingress.get("spec") or {}
        hosts.update(rule.get("host") for rule in spec.get("rules") or [] if rule.get("host"))
        for tls in spec.get("tls") or []:
            hosts.update(h for h in tls.get("hosts") or [] if h)
    return hosts


def releasable(claims: Iterable[Mapping[str, Any]], owner: str, still_routed: set[str]) -> tuple[list[str], list[str]]:
    """(claims of `owner` that may go, domains kept because an Ingress still routes them).

    A claim without a domain annotation cannot be checked against the routes and is kept.
    """
    free, kept = [], []
    for claim in claims:
        meta = claim["metadata"]
        annotations = meta.get("annotations") or {}
        if annotations.get(naming.OWNER_ANNOTATION) != owner or not naming.is_managed(meta.get("labels")):
            continue  # not ours: never touched
        domain = annotations.get(CLAIMED_DOMAIN_ANNOTATION)
        if domain is None or domain in still_routed:
            kept.append(domain or meta["name"])
        else:
            free.append(meta["name"])
    return free, kept



def route_refusal(service: Mapping[str, Any] | None, name: str) -> str | None:
    """Why a tenant's custom domains must not be routed to this Service, or None when they may.

    An ExternalName Service makes the Ingress controller proxy the tenant's domain to any host
    (inside the cluster too); externalIPs make it intercept traffic to addresses it does not own.
    A missing Service is no reason: the route then answers 503 until the tenant deploys it.
    """
    if service is None:
        return None
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return (f"Service {name} is of type ExternalName ({spec.get('externalName', '')!r}): custom domains are "
                f"only routed to pods of the tenant; make {name} a ClusterIP Service selecting your frontend pods")
    if spec.get("externalIPs"):
        return (f"Service {name} has externalIPs, which tenants may not use; remove spec.externalIPs "
                f"(tenantry removes them) and use a ClusterIP Service")
    return None


# Annotations through which external-dns (with its Service source) publishes a Service under any
# name: the platform's DNS belongs to the operator (slugs, verified domains), never to a tenant.
# The first is external-dns's prefix until v0.21, the second its default since v0.22.
EXTERNAL_DNS_PREFIXES = ("external-dns.alpha.kubernetes.io/", "external-dns.kubernetes.io/")


def service_correction(service: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch that takes from a tenant's Service what tenants may not use, or None:
    externalIPs (they intercept traffic to addresses the tenant does not own, CVE-2020-8554) and
    external-dns's annotations (a record for any name in the platform's zones, past the slug and
    domain claims: `hostname: login.<platform domain>`)."""
    patch: dict[str, Any] = {}
    if (service.get("spec") or {}).get("externalIPs"):
        patch["spec"] = {"externalIPs": None}
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    published = {key: None for key in annotations if key.startswith(EXTERNAL_DNS_PREFIXES)}
    if published:
        patch["metadata"] = {"annotations": published}
    return patch or None
