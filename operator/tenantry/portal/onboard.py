"""The onboarding form: a new customer's Tenant (and Branding) YAML for the partner's folder.

The form never writes to the cluster: git stays the source of truth. Its output is checked by
`tenantry validate` itself (the same rules a pull request meets), in a scratch copy of the
repository's layout, and each finding is put next to the form field that caused it. The scratch
copy holds no customers, so what validate finds across files is checked here against the partner's
existing Tenants and Brandings (the portal's watch-fed caches): a slug or custom domain one of them
already has, and a Branding the form's would replace.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantry.api.common import API_VERSION
from tenantry.api.features import KNOWN_FEATURES
from tenantry.cli.new import manifest
from tenantry.cli.sources import dump
from tenantry.cli.validate import Finding, validate
from tenantry.domain.admission import DOMAIN_HINT, SLUG_HINT
from tenantry.domain.naming import PARTNER_LABEL

# form field -> (document, the field path validate names)
FIELDS: dict[str, tuple[str, str]] = {
    "slug": ("tenant", "metadata.name"), "company": ("tenant", "spec.company"),
    "contact_name": ("tenant", "spec.contact.name"), "contact_email": ("tenant", "spec.contact.email"),
    "phone": ("tenant", "spec.contact.phone"), "industry": ("tenant", "spec.industry"),
    "employees": ("tenant", "spec.employees"), "plan": ("tenant", "spec.plan.featureSet"),
    "seats": ("tenant", "spec.plan.seats"), "price": ("tenant", "spec.plan.price.monthly"),
    "currency": ("tenant", "spec.plan.price.currency"), "domain": ("tenant", "spec.domains[0]"),
    "primary": ("branding", "spec.colours.primary"), "secondary": ("branding", "spec.colours.secondary"),
    "logo_url": ("branding", "spec.logo.url"), "assistant_name": ("branding", "spec.assistantName"),
    "welcome": ("branding", "spec.welcome.en"),
}
# Fields of the documents that the form fills in from another field.
DERIVED: dict[tuple[str, str], str] = {("tenant", "spec.branding"): "slug", ("branding", "metadata.name"): "slug",
                                       ("tenant", "spec.admins[0]"): "contact_email"}
FEATURES = tuple(sorted(KNOWN_FEATURES))


@dataclass(frozen=True)
class Existing:
    """One of the partner's customers, as far as a new one may clash with it."""

    slug: str
    company: str
    domains: tuple[str, ...] = ()


def existing(tenants: Iterable[Mapping[str, Any]]) -> list[Existing]:
    """The partner's Tenants (as the API server holds them) reduced to what a new one may clash with."""
    found = []
    for body in tenants:
        spec = body.get("spec") or {}
        domains = spec.get("domains") or []
        found.append(Existing(str(body["metadata"]["name"]), str(spec.get("company", "")),
                              tuple(d for d in domains if isinstance(d, str))))
    return found


def _domain_key(domain: str) -> str:
    return domain.strip().rstrip(".").casefold()


def clashes(docs: Sequence[Mapping[str, Any]], partner: str, namespace: str, customers: Sequence[Existing],
            catalogue: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """What the new documents would clash with among the partner's own objects, by form field: a
    slug or custom domain an existing customer has (what `tenantry validate` finds across the
    partner's files), and a Branding of the partner's that the form's Branding would replace."""
    errors: dict[str, list[str]] = {}
    tenant = docs[0]
    slug = tenant["metadata"]["name"]
    for other in customers:
        if slug and other.slug == slug:
            errors.setdefault("slug", []).append(
                f"tenant name (slug) {slug!r} is already your customer {other.company!r} "
                f"(tenants/{partner}/{other.slug}.yaml) ({SLUG_HINT})")
        taken = {_domain_key(d) for d in other.domains}
        for domain in tenant["spec"].get("domains") or []:
            if isinstance(domain, str) and _domain_key(domain) in taken:
                errors.setdefault("domain", []).append(
                    f"custom domain {domain!r} is already used by your customer {other.company!r} "
                    f"(tenants/{partner}/{other.slug}.yaml) ({DOMAIN_HINT})")
    if len(docs) > 1 and slug:
        ours = {o["metadata"]["name"] for o in catalogue
                if o["kind"] == "Branding" and o["metadata"]["namespace"] == namespace}
        # (A Branding named "default", every customer's look, is no slug: it is reserved.)
        if slug in ours:
            errors.setdefault("slug", []).append(
                f"your namespace already has a Branding {slug!r}: the form's Branding of that name would replace "
                "it (choose another name, or leave the branding fields empty and set spec.branding to use it)")
    return errors


@dataclass(frozen=True)
class Outcome:
    yaml: str  # the documents, ready to commit (empty when the form has errors)
    path: str  # where they go in the repository
    errors: Mapping[str, list[str]]  # form field ("" : not one field) -> messages


def _int(text: str) -> int | str:
    # A non-number stays text, and validate says what is wrong ("²" is a digit to isdigit, not to int).
    return int(text) if text.strip().isascii() and text.strip().isdigit() else text


def _stub(obj: dict[str, Any]) -> dict[str, Any]:
    """What validate needs of a catalogue object: a Branding only exists (its logo and texts are
    not the form's business, and a partner's hundred large logos must not slow every check)."""
    if obj["kind"] != "Branding":
        return obj
    return {**obj, "spec": {"colours": {"primary": "#000000"}}}


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def documents(form: Mapping[str, str], features: list[str], namespace: str) -> list[dict[str, Any]]:
    """The Tenant, and a Branding of the same name when any branding field is filled in."""
    values: dict[str, Any] = {
        "slug": form.get("slug", "").strip(), "company": form.get("company", "").strip(),
        "contact_name": form.get("contact_name", "").strip(), "contact_email": form.get("contact_email", "").strip(),
        "phone": form.get("phone", "").strip() or None, "plan": form.get("plan", "").strip(),
        "seats": _int(form.get("seats", "")), "currency": form.get("currency", "").strip() or "EUR",
        "price": form.get("price", "").strip() or None, "domains": [d for d in [form.get("domain", "").strip()] if d],
    }
    branded = any(form.get(k, "").strip() for k in ("primary", "secondary", "logo_url", "assistant_name", "welcome"))
    if branded:
        values["branding"] = values["slug"]
    # Seats and price as typed (validate judges them; "12,50" is no number to `manifest`).
    tenant = manifest({**values, "seats": 1, "price": None}, namespace)
    tenant["spec"]["plan"]["seats"] = values["seats"]
    if values["price"] is not None:
        tenant["spec"]["plan"]["price"] = {"monthly": _number(values["price"]), "currency": values["currency"]}
    if form.get("industry", "").strip():
        tenant["spec"]["industry"] = form["industry"].strip()
    if form.get("employees", "").strip():
        tenant["spec"]["employees"] = _int(form["employees"])
    chosen = [f for f in features if f in KNOWN_FEATURES]
    if chosen:
        tenant["spec"]["features"] = {f: {"enabled": True} for f in chosen}
    out = [tenant]
    if branded:
        spec: dict[str, Any] = {"colours": {"primary": form.get("primary", "").strip()}}
        if form.get("secondary", "").strip():
            spec["colours"]["secondary"] = form["secondary"].strip()
        if form.get("logo_url", "").strip():
            spec["logo"] = {"url": form["logo_url"].strip()}
        if form.get("assistant_name", "").strip():
            spec["assistantName"] = form["assistant_name"].strip()
        if form.get("welcome", "").strip():
            spec["welcome"] = {"en": form["welcome"].strip()}
        out.append({"apiVersion": API_VERSION, "kind": "Branding",
                    "metadata": {"name": values["slug"], "namespace": namespace}, "spec": spec})
    return out


def check(form: Mapping[str, str], features: list[str], partner: str, namespace: str,
          platform_namespace: str, platform_domain: str, catalogue: list[dict[str, Any]],
          customers: Sequence[Existing] = ()) -> Outcome:
    """The documents and `tenantry validate`'s findings on them, by form field. `catalogue`: the
    FeatureSets and Brandings a tenant may name (the partner's and the platform's, as the cluster has
    them); `customers`: the partner's existing Tenants."""
    docs = documents(form, features, namespace)
    slug = docs[0]["metadata"]["name"] or "new-customer"
    path = f"tenants/{partner}/{slug}.yaml"
    text = dump(docs)
    with tempfile.TemporaryDirectory(prefix="tenantry-portal-") as scratch:
        repo = Path(scratch)
        (repo / "partners").mkdir()
        (repo / "partners" / f"{partner}.yaml").write_text(dump([
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": namespace, "labels": {PARTNER_LABEL: partner}}}]))
        folder = repo / "tenants" / partner
        folder.mkdir(parents=True)
        files = {"tenant": folder / "tenant.yaml", "branding": folder / "branding.yaml"}
        (repo / "platform").mkdir()
        known = [_stub(o) for o in catalogue]
        (repo / "platform" / "catalogue.yaml").write_text(dump(
            [o for o in known if o["metadata"]["namespace"] == platform_namespace]))
        (folder / "catalogue.yaml").write_text(dump(
            [o for o in known if o["metadata"]["namespace"] == namespace and o["metadata"]["name"] != slug]))
        files["tenant"].write_text(dump(docs[:1]))
        if len(docs) > 1:
            files["branding"].write_text(dump(docs[1:]))
        findings = validate([repo], platform_namespace, platform_domain, repo=repo)
        fields = {(str(files[doc]), where): name for name, (doc, where) in FIELDS.items()}
        derived = {(str(files[doc]), where): name for (doc, where), name in DERIVED.items()}
    errors = _by_field(findings, fields, derived)
    for name, messages in clashes(docs, partner, namespace, customers, catalogue).items():
        if name not in errors:  # a value validate refuses is told that first (a reserved slug, not "taken")
            errors[name] = messages
    return Outcome("" if errors else text, path, errors)


def _by_field(findings: Iterable[Finding], fields: Mapping[tuple[str, str], str],
              derived: Mapping[tuple[str, str], str]) -> dict[str, list[str]]:
    """validate's findings by form field ("": not one field), each told once: a message once per
    field whatever its hint, and a finding on a value the form copied from a field (the Branding's
    name from the slug) only when that field has no finding of its own."""
    placed = []
    for finding in findings:
        key = (finding.file, finding.field)
        if key in derived:
            placed.append((derived[key], True, finding))
            continue
        name = fields.get(key)
        if name is None:  # a finding under a field (spec.plan.price) or of features
            name = next((n for (file, where), n in fields.items()
                         if file == finding.file and finding.field.startswith(where)), "")
        placed.append((name, False, finding))
    own = {name for name, copied, _ in placed if not copied}
    errors: dict[str, list[str]] = {}
    told: set[tuple[str, str]] = set()
    for name, copied, finding in placed:
        said = finding.message if name else f"{finding.field}: {finding.message}"
        if (copied and name in own) or (name, said) in told:
            continue
        told.add((name, said))
        errors.setdefault(name, []).append(said + (f" ({finding.hint})" if finding.hint else ""))
    return errors
