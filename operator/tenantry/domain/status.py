"""Tenant status: conditions that `kubectl wait`, kstatus, Flux and Argo CD understand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]

READY = "Ready"
NAMESPACE_READY = "NamespaceReady"
FEATURES_READY = "FeaturesReady"
BRANDING_READY = "BrandingReady"
DNS_READY = "DNSReady"
# Informational: a custom domain waits for the customer's DNS; the tenant itself is served anyway.
DOMAINS_VERIFIED = "DomainsVerified"
# Informational: whether the platform's last usage report made sense.
USAGE_VALID = "UsageValid"
# Informational, only while a tenant has verified custom domains: False (RouteRefused) when the
# route Service may not be routed to (ExternalName, externalIPs).
DOMAINS_ROUTED = "DomainsRouted"
# A warning, not a failure: it never makes a tenant un-Ready.
BRANDING_CONTRAST = "BrandingContrast"
# Informational: False while another writer keeps changing a managed object and we left it alone.
IN_SYNC = "ManagedObjectsInSync"
# Informational: False when a partner FeatureSet's spec.resources were ignored (only the platform
# sets quotas), and when the quota was clamped to the platform's per-tenant ceiling.
PLAN_RESOURCES = "PlanResourcesAccepted"
QUOTA_CEILING = "QuotaWithinCeiling"
# A warning, present only while the spec asks for another currency than the one provisioned.
CURRENCY_FIXED = "CurrencyFixed"
# Informational, written by the pod security re-check (handlers/podsecurity), not by the
# reconcile: False names the last pod deleted for breaking the restricted profile.
POD_SECURITY = "PodSecurity"
# Informational, never makes a tenant un-Ready: whether the welcome e-mail went out (domain/welcome).
WELCOME_SENT = "WelcomeSent"
CARRIED_OVER = (POD_SECURITY,)  # conditions the reconcile keeps as they are


@dataclass(frozen=True)
class Verdict:
    """The outcome of one aspect: a condition without its timestamps."""

    type: str
    status: Status
    reason: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "True"


def ready_verdict(aspects: list[Verdict], state: str, trial: Verdict | None = None) -> Verdict:
    """Ready is True when every aspect is; else it carries the first failing aspect's reason.

    Ready says whether the tenant is as it should be, not whether it serves: a Suspended tenant is
    Ready=True with reason Suspended (so `kubectl wait`, Flux and Argo CD do not report a deliberate
    suspension as a failure). A trial that ended is suspended on purpose too, and is reported the
    same way: Ready=True, reason Suspended, with the trial's message saying why (a transition of
    its own, with its own Event); its Trial condition says TrialEnded."""
    failing = [v for v in aspects if not v.ok]
    if failing:
        first = failing[0]
        return Verdict(READY, first.status, first.reason, first.message)
    if trial is not None and not trial.ok:
        return Verdict(READY, "True", "Suspended", trial.message)
    messages = {"Active": "tenant is provisioned and serving",
                "Suspended": "tenant is suspended: no workloads may run, data and access are kept",
                "Cancelled": "tenant is cancelled and offboarded according to its deletionPolicy"}
    reasons = {"Active": "Provisioned", "Suspended": "Suspended", "Cancelled": "Cancelled"}
    return Verdict(READY, "True", reasons[state], messages[state])


def conditions(verdicts: list[Verdict], previous: list[dict[str, Any]], generation: int,
               now: str) -> list[dict[str, Any]]:
    """Conditions for the verdicts, keeping lastTransitionTime while a status does not change."""
    before = {c.get("type"): c for c in previous}
    result = []
    for v in verdicts:
        old = before.get(v.type)
        since = old["lastTransitionTime"] if old and old.get("status") == v.status and \
            old.get("lastTransitionTime") else now
        result.append({"type": v.type, "status": v.status, "reason": v.reason, "message": v.message,
                       "lastTransitionTime": since, "observedGeneration": generation})
    return result


def carried_over(previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conditions other parts of the operator own, kept as they are by the reconcile."""
    return [c for c in previous if c.get("type") in CARRIED_OVER]
