"""The admission webhooks: what no schema can check, refused before it is stored (validating), and
the operator's finalizer on each new Tenant (mutating, `tenant_finalizer`).

Tenants: the model's own rules, a partner namespace, a slug and domains no other tenant holds
and the platform has not reserved (both refused in the same words, so the answer is no oracle of
what other partners hold), reserved metadata (labels, annotations, the finalizer), immutable fields. Brandings and
FeatureSets: the model's rules (safe SVG, known features), reserved metadata, resources in a
partner's plan, `extends` cycles. Members of the platform groups and the operator itself may
change reserved metadata, immutable and platform-only fields; slugs and domains stay unique for
everyone. Only what a request changes is judged: a metadata-only update or an object being
deleted always passes the spec rules, so nothing stored can get stuck. Missing plans and
brandings are warnings, not refusals: GitOps tools apply a commit's objects in no fixed order,
and the reconcile reports what is missing.

Served by handlers/webhook.py (its own thread) when a webhook port is configured.
Defence in depth: with failurePolicy Ignore nothing here may matter for safety, so the operator
re-checks each rule on its own: the spec model (InvalidSpec, nothing provisioned), the partner
namespace (NotInPartnerNamespace), taken and reserved slugs and domains (SlugConflict and
status.domains, in these same words), `extends` cycles (FeaturesReady=False), the currency of a
provisioned tenant (metrics keep status.currency; CurrencyFixed=False says so). The operator reads
no tenantry.dev/ label or annotation of a Tenant, and kopf keeps its handler progress in the
status (which partners cannot write), so reserved metadata a partner sets has no effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantry.adapters.http import Api
from tenantry.adapters.kube import Kube
from tenantry.adapters.publicsuffix import unclaimable
from tenantry.domain import admission, dns, naming
from tenantry.domain.admission import Problem
from tenantry.domain.branding import branding_name
from tenantry.domain.children import ObjectRef
from tenantry.domain.config import OperatorConfig
from tenantry.domain.features import Unresolved, resolve_plan
from tenantry.domain.lifecycle import Claim, claim, partner_of
from tenantry.handlers import podsecurity
from tenantry.handlers.catalogue import Catalogue
from tenantry.handlers.webhook import Denied, Judge, NotReady, Review


def _refuse(problems: list[Problem]) -> None:
    if problems:
        raise Denied("; ".join(map(str, problems)), code=422)


def _judge(kind: str, body: Mapping[str, Any], old: Mapping[str, Any] | None, userinfo: Mapping[str, Any],
           config: OperatorConfig) -> tuple[dict[str, Any], bool] | None:
    """(spec, whether this request changes it), or None when there is nothing to judge.

    An object being deleted is never judged: the operator must always be able to remove its
    finalizer. Reserved metadata, immutable and platform-only fields are judged for partners.
    """
    metadata = body.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return None
    raw = body.get("spec")
    spec = dict(raw) if isinstance(raw, Mapping) else {}
    old_spec = (old or {}).get("spec")
    problems = []
    if not admission.may_override(userinfo, config.platform_groups, config.operator_identity):
        # A Tenant's create carries the operator's finalizer: the mutating webhook added it.
        added = (naming.FINALIZER,) if kind == "Tenant" and old is None else ()
        problems += admission.reserved_metadata_changes((old or {}).get("metadata"), metadata, added)
        problems += admission.immutable_changes(kind, old, spec)
        problems += admission.platform_only_changes(kind, metadata.get("namespace") or "", config.platform_namespace,
                                                    old_spec, spec)
    # A metadata-only update (finalizers, labels) of a stored object is not judged by rules that
    # may have changed since it was stored: that would make it impossible to update or delete.
    changed = old is None or old_spec != raw
    if changed:
        problems += admission.spec_problems(kind, spec)
    _refuse(problems)
    return spec, changed


async def _taken(kube: Kube, config: OperatorConfig, namespace: str, name: str, spec: Mapping[str, Any],
                 old_spec: Mapping[str, Any] | None, creating: bool) -> list[Problem]:
    """On create: a partner namespace and an available slug. Each newly added domain: claimable and available.

    A slug is held by its tenant namespace (the reconcile creates it, first come wins), so a Tenant
    that was never provisioned holds nothing. Taken and reserved get the same answer.
    """
    problems = []
    if creating:
        if partner_of(await kube.get(ObjectRef("v1", "Namespace", namespace))) is None:
            problems.append(admission.not_in_partner_namespace(namespace))
        holder = await kube.get(ObjectRef("v1", "Namespace",
                                          naming.tenant_namespace(config.namespace_prefix, name)))
        held = claim(holder, namespace, name)
        if held in (Claim.TAKEN, Claim.FOREIGN) or (held is Claim.FREE and config.slug_reserved(name)):
            problems.append(admission.slug_unavailable(name))
    before = set((old_spec or {}).get("domains") or ())
    for index, domain in enumerate(spec.get("domains") or ()):
        if domain in before or not isinstance(domain, str):
            continue  # judged when it was added (or refused by the schema)
        problem = unclaimable(domain, config.platform_domain)
        if problem:
            problems.append(Problem(("spec", "domains", index), problem))
            continue
        live = await kube.get(ObjectRef("v1", "Secret", dns.claim_name(domain), config.platform_namespace))
        holder = ((live or {}).get("metadata", {}).get("annotations") or {}).get(naming.OWNER_ANNOTATION)
        if config.domain_reserved(domain) or (live is not None and holder != naming.owner_key(namespace, name)):
            problems.append(admission.domain_unavailable(index, domain))
    return problems


def _missing_references(catalogue: Catalogue, config: OperatorConfig, namespace: str,
                        spec: Mapping[str, Any]) -> list[Problem]:
    plans, looks, platform = catalogue.feature_set(), catalogue.branding(), config.platform_namespace
    problems = []
    plan = (spec.get("plan") or {}).get("featureSet")
    if plan and plans(namespace, plan) is None and plans(platform, plan) is None:
        problems.append(admission.missing_plan(namespace, plan, platform))
    wanted = branding_name(spec.get("branding"))
    if looks(namespace, wanted) is None and looks(platform, wanted) is None:
        problems.append(admission.missing_branding(namespace, wanted, bool(spec.get("branding")), platform))
    return problems


class Judges:
    """The webhook's judges by URL path (the chart's webhook configuration names them), reading
    what the operator's start-up built: its settings, the catalogue and the informers."""

    def __init__(self, memo: Any) -> None:
        self._memo = memo
        # Requests of this thread's loop on this thread's connection; reads of watched kinds from
        # the operator's informers (shared, read-only here).
        self._kube = Kube(Api.from_environment(timeout=4))  # under the webhook's 5 s timeout

    def _context(self) -> tuple[OperatorConfig, Catalogue, Kube]:
        memo = self._memo
        if "started" not in memo or not memo.started.is_set():
            raise NotReady
        self._kube.cache = memo.kube.cache
        return memo.config, memo.catalogue, self._kube

    def by_path(self) -> dict[str, Judge]:
        judges: dict[str, Judge] = {"mutate-tenant": self.tenant_finalizer, "validate-tenant": self.tenant,
                                    "validate-branding": self.branding, "validate-featureset": self.feature_set}
        for _, version, plural, kind in podsecurity.WORKLOADS:
            judges[podsecurity.webhook_id(plural, version)] = self._workload(kind)
        return judges

    async def tenant(self, review: Review) -> None:
        config, catalogue, kube = self._context()
        judged = _judge("Tenant", review.body, review.old, review.userinfo, config)
        if judged is None or not judged[1]:
            return
        spec = judged[0]
        metadata = review.body.get("metadata") or {}
        namespace, name = metadata.get("namespace") or "", metadata.get("name") or ""
        try:
            problems = await _taken(kube, config, namespace, name, spec, (review.old or {}).get("spec"),
                                    creating=review.operation == "CREATE")
        except Exception as error:  # noqa: BLE001  (an API hiccup must not refuse a valid change)
            review.warnings.append(f"slug and domains not checked now ({error}); "
                                   "the operator checks them when it reconciles")
            problems = []
        _refuse(problems)
        review.warnings.extend(map(str, _missing_references(catalogue, config, namespace, spec)))

    @staticmethod
    async def tenant_finalizer(review: Review) -> None:
        """A Tenant's create gets the operator's finalizer, and nothing is judged here.

        Mutating admission sees the object before the API server has normalised and validated it
        (before Kubernetes 1.24/1.25 its namespace and deletionTimestamp are still the client's),
        so the validating webhook judges the create, as stored. The finalizer saves kopf's PATCH
        of every new Tenant, the review of that update and the wait for its watch event.
        """
        if review.operation == "CREATE":
            review.patch.extend(admission.finalizer_patch(review.body.get("metadata") or {}))

    async def branding(self, review: Review) -> None:
        config, _, _ = self._context()
        _judge("Branding", review.body, review.old, review.userinfo, config)

    async def feature_set(self, review: Review) -> None:
        config, catalogue, _ = self._context()
        judged = _judge("FeatureSet", review.body, review.old, review.userinfo, config)
        if judged is None or not judged[1]:
            return
        # Resolve the plan as it would be with this change stored: a cycle is refused now, not found later.
        metadata = review.body.get("metadata") or {}
        spec, namespace, name = judged[0], metadata.get("namespace") or "", metadata.get("name") or ""
        stored = catalogue.feature_set()
        resolved = resolve_plan(name, lambda ns, n: spec if (ns, n) == (namespace, name) else stored(ns, n),
                                namespace, config.platform_namespace)
        if isinstance(resolved, Unresolved) and resolved.reason in ("ExtendsCycle", "ExtendsTooDeep"):
            _refuse([Problem(("spec", "extends"), resolved.message)])

    @staticmethod
    def _workload(kind: str) -> Judge:
        async def judge(review: Review) -> None:
            refused = podsecurity.judge(kind, review.body, review.old)
            if refused:
                raise Denied(refused, code=403)
        return judge
