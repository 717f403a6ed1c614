"""`tenantry validate`: offline checks of a tenants repository, each finding with file, line and field.

First the generated CRD schemas (what the API server would refuse), then the models' own rules
(feature names, safe SVG), then what no single object can know: unique slugs and domains across
all files, tenant names the platform reserves, references to FeatureSets and Brandings that exist,
partner folders holding only their partner's objects, and `extends` cycles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from tenantry.adapters.publicsuffix import unclaimable
from tenantry.api.common import API_VERSION
from tenantry.api.crd import all_crds
from tenantry.cli.sources import Document, SourceError, load
from tenantry.domain.admission import (
    DOMAIN_HINT,
    SLUG_HINT,
    SPEC_MODELS,
    Problem,
    missing_branding,
    missing_plan,
    partner_plan_resources,
    reserved_metadata_changes,
    slug_unavailable,
    spec_problems,
)
from tenantry.domain.branding import branding_name
from tenantry.domain.features import Unresolved, resolve_plan
from tenantry.domain.naming import PARTNER_LABEL, RESERVED_SLUGS


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: where it is, what is wrong, how to fix it."""

    file: str
    line: int
    field: str
    message: str
    hint: str = ""


def _schemas() -> dict[str, jsonschema.protocols.Validator]:
    out = {}
    for crd in all_crds().values():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        out[crd["spec"]["names"]["kind"]] = jsonschema.Draft7Validator(schema)
    return out


def _field(location: Iterable[str | int]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _describe(schema: dict[str, Any], location: tuple[str | int, ...]) -> str:
    """The schema's description of a field, as the hint of what it should be."""
    node = schema
    for part in location:
        props = node.get("properties", {})
        if isinstance(part, str) and part in props:
            node = props[part]
        elif isinstance(part, int) and "items" in node:
            node = node["items"]
        elif "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
            node = node["additionalProperties"]
        else:
            return ""
    return node.get("description", "")


@dataclass
class _Object:
    document: Document
    kind: str
    name: str
    namespace: str
    spec: dict[str, Any]
    valid: bool


def files_under(paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """(file, its path inside the repository) for YAML files named or found below the paths.

    A folder argument is the repository root, so `tenants/<partner>/` is judged inside it; hidden
    folders such as .github are skipped.
    """
    found: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir():
            found.extend((p, p.relative_to(path)) for p in sorted(path.rglob("*.y*ml"))
                         if p.suffix in (".yaml", ".yml")
                         and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            found.append((path, path))
    return found


class Validator:
    """Collects findings over a set of files."""

    def __init__(self, platform_namespace: str = "tenantry-system", platform_domain: str = "") -> None:
        self.platform_namespace = platform_namespace
        self.platform_domain = platform_domain
        self.schemas = _schemas()
        self.findings: list[Finding] = []
        self.objects: list[_Object] = []
        self.partner_namespaces: dict[str, str] = {}  # partner id -> namespace
        self.inside: dict[Path, Path] = {}  # file -> its path inside the repository

    def add(self, document: Document, location: tuple[str | int, ...], message: str, hint: str = "") -> None:
        self.findings.append(Finding(str(document.path), document.line(location), _field(location), message, hint))

    def add_problem(self, document: Document, problem: Problem) -> None:
        self.add(document, problem.location, problem.message, problem.hint)

    def run(self, files: list[tuple[Path, Path]]) -> list[Finding]:
        for path, inside in files:
            self.inside[path] = inside
            try:
                documents = load(path)
            except SourceError as error:
                self.findings.append(Finding(str(path), error.line, "(file)", str(error)))
                continue
            except OSError as error:
                self.findings.append(Finding(str(path), 1, "(file)", f"cannot read: {error.strerror}"))
                continue
            for document in documents:
                self._one(document)
        self._across_files()
        return sorted(set(self.findings))

    def _one(self, document: Document) -> None:
        data = document.data
        if not isinstance(data, dict):
            self.add(document, (), "a document must be a mapping with apiVersion, kind and metadata")
            return
        kind = data.get("kind")
        if kind == "Namespace":
            partner = ((data.get("metadata") or {}).get("labels") or {}).get(PARTNER_LABEL)
            if partner:
                self.partner_namespaces[str(partner)] = str((data.get("metadata") or {}).get("name"))
            return
        if kind not in SPEC_MODELS or data.get("apiVersion") != API_VERSION:
            if str(data.get("apiVersion", "")).startswith("tenantry.dev/"):
                self.add(document, ("apiVersion",), f"unknown tenantry kind or version {kind!r} "
                         f"{data.get('apiVersion')!r}", f"use apiVersion {API_VERSION} and a kind of Tenant, "
                         "Branding or FeatureSet")
            return
        valid = self._schema(document, kind) and self._model(document, kind)
        meta = data.get("metadata") or {}
        if not meta.get("namespace"):
            self.add(document, ("metadata",), "metadata.namespace is missing",
                     "set it to the partner namespace (or the platform namespace for shared plans)")
        self.objects.append(_Object(document, kind, str(meta.get("name", "")), str(meta.get("namespace", "")),
                                    data.get("spec") if isinstance(data.get("spec"), dict) else {}, valid))

    def _schema(self, document: Document, kind: str) -> bool:
        validator = self.schemas[kind]
        errors = sorted(validator.iter_errors(document.data), key=lambda e: list(map(str, e.absolute_path)))
        for error in errors:
            location = tuple(error.absolute_path)
            self.add(document, location, error.message, _describe(validator.schema, location))
        return not errors

    def _model(self, document: Document, kind: str) -> bool:
        problems = spec_problems(kind, document.data.get("spec"))
        for problem in problems:
            self.add_problem(document, problem)
        return not problems

    def _across_files(self) -> None:
        self._partner_folders()
        tenants = [o for o in self.objects if o.kind == "Tenant"]
        self._unique(tenants, lambda o: [((("metadata", "name"),), o.name)], "tenant name (slug)", SLUG_HINT)
        self._unique(tenants, lambda o: [((("spec", "domains", i),), d) for i, d in
                                         enumerate(o.spec.get("domains") or [])],
                     "custom domain", DOMAIN_HINT)
        for tenant in tenants:
            if tenant.name in RESERVED_SLUGS:  # the platform's reserved names, as the webhook and the operator
                self.add_problem(tenant.document, slug_unavailable(tenant.name))
        self._references(tenants)
        self._domains(tenants)
        self._extends()

    def _partner_folders(self) -> None:
        for obj in self.objects:
            parts = self.inside.get(obj.document.path, obj.document.path).parts
            if len(parts) < 3 or parts[-3] != "tenants":
                continue
            partner = parts[-2]
            # The partner's folder is applied as the partner's ServiceAccount; the webhook refuses these.
            if obj.kind == "FeatureSet" and obj.spec.get("resources") is not None:
                self.add_problem(obj.document, partner_plan_resources(obj.namespace))
            for problem in reserved_metadata_changes(None, obj.document.data.get("metadata") or {}):
                self.add_problem(obj.document, problem)
            expected = self.partner_namespaces.get(partner, f"partner-{partner}")
            if obj.namespace and obj.namespace != expected:
                self.add(obj.document, ("metadata", "namespace"),
                         f"a file under tenants/{partner}/ may only hold partner {partner}'s objects, but this "
                         f"{obj.kind} is in namespace {obj.namespace!r}",
                         f"set metadata.namespace to {expected!r} or move the file to that partner's folder")

    def _unique(self, objects: list[_Object], keys, what: str, hint: str) -> None:
        """Every place a value appears more than once gets a finding naming the other places."""
        places: dict[str, list[tuple[_Object, tuple]]] = defaultdict(list)
        for obj in objects:
            for (location,), value in keys(obj):
                if value:
                    places[value].append((obj, location))
        for value, where in places.items():
            if len(where) < 2:
                continue
            for obj, location in where:
                others = ", ".join(f"{o.document.path}:{o.document.line(loc)}" for o, loc in where
                                   if (o, loc) != (obj, location))
                self.add(obj.document, location, f"{what} {value!r} is also used in {others}", hint)

    def lookup(self, kind: str):
        specs = {(o.namespace, o.name): o.spec for o in self.objects if o.kind == kind}
        return lambda namespace, name: specs.get((namespace, name))

    def _references(self, tenants: list[_Object]) -> None:
        plans, looks = self.lookup("FeatureSet"), self.lookup("Branding")
        for tenant in tenants:
            plan = (tenant.spec.get("plan") or {}).get("featureSet")
            if plan and plans(tenant.namespace, plan) is None and plans(self.platform_namespace, plan) is None:
                self.add_problem(tenant.document, missing_plan(tenant.namespace, plan, self.platform_namespace))
            wanted = branding_name(tenant.spec.get("branding"))
            if looks(tenant.namespace, wanted) is None and looks(self.platform_namespace, wanted) is None:
                self.add_problem(tenant.document, missing_branding(tenant.namespace, wanted,
                                                                   bool(tenant.spec.get("branding")),
                                                                   self.platform_namespace))

    def _domains(self, tenants: list[_Object]) -> None:
        for tenant in tenants:
            if not tenant.valid:
                continue
            for index, domain in enumerate(tenant.spec.get("domains") or ()):
                problem = unclaimable(domain, self.platform_domain)
                if problem:
                    self.add(tenant.document, ("spec", "domains", index), problem)

    def _extends(self) -> None:
        plans = self.lookup("FeatureSet")
        for obj in self.objects:
            if obj.kind != "FeatureSet" or not obj.valid:
                continue
            resolved = resolve_plan(obj.name, plans, obj.namespace, self.platform_namespace)
            if isinstance(resolved, Unresolved) and resolved.reason in ("ExtendsCycle", "ExtendsTooDeep",
                                                                         "FeatureSetNotFound"):
                self.add(obj.document, ("spec", "extends"), resolved.message)


def validate(paths: Iterable[Path], platform_namespace: str = "tenantry-system",
             platform_domain: str = "") -> list[Finding]:
    return Validator(platform_namespace, platform_domain).run(files_under(paths))


def by_file(findings: list[Finding]) -> Iterator[tuple[str, list[Finding]]]:
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        grouped[finding.file].append(finding)
    yield from sorted(grouped.items())
