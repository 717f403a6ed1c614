"""`tenantry validate`: offline checks of a tenants repository, each finding with file, line and field.

First the generated CRD schemas (what the API server would refuse), then the models' own rules
(feature names, safe SVG), then what no single object can know: unique slugs and domains across
all files, tenant names the platform reserves, references to FeatureSets and Brandings that exist,
partner folders holding only their partner's objects, and `extends` cycles.
"""

from __future__ import annotations

import dataclasses
import difflib
import gc
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from tenantry.adapters.publicsuffix import unclaimable
from tenantry.api.common import API_VERSION, PATTERN_WORDS, SHOWN_CHARACTERS, over_bound, quoted
from tenantry.api.crd import all_crds
from tenantry.cli.quickschema import compile_check, end_anchored
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
from tenantry.domain.lifecycle import ERRORS_SHOWN
from tenantry.domain.naming import PARTNER_LABEL, reserved_slug

FINDINGS_PER_DOCUMENT = 200

# Bounds whose breach jsonschema reports by printing the whole value (a 70,000-character SVG, 51
# languages): said by counting instead.
_COUNTED = {"maxLength": "characters", "maxItems": "items", "maxProperties": "entries"}


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, except that a long list of allowed values (the ISO 4217 currencies) is
    not printed whole, nor a value over its size bound: the field's description (the hint) says
    what is wanted."""
    if error.validator == "enum" and len(error.validator_value) > 10:
        return f"{error.instance!r} is not one of the {len(error.validator_value)} allowed values"
    if error.validator in _COUNTED and isinstance(error.instance, (str, list, dict)):
        return over_bound(len(error.instance), _COUNTED[str(error.validator)], error.validator_value)
    if error.validator == "type" and isinstance(error.validator_value, str):
        return _wrong_type(error.instance, error.validator_value)
    return error.message


def unknown_field(name: str, known: list[str]) -> str:
    """A field the schema does not declare, with the closest declared name, else the names there are."""
    by_case = {field.lower(): field for field in known}
    close = difflib.get_close_matches(name.lower(), list(by_case), n=1, cutoff=0.6) \
        if len(name) <= SHOWN_CHARACTERS else []
    if close:
        return f"unknown field {quoted(name)}: did you mean {quoted(by_case[close[0]])}? (the API server drops " \
               "fields it does not know)"
    return f"unknown field {quoted(name)}: the API server would drop it; the fields here are {', '.join(known)}"


def _number_fix(text: str, wanted: str) -> str:
    """How to write a number that came as text: without thousands separators ("1.000", "1,000"),
    with a dot for a decimal comma ("12,50"); both readings where either may be meant ("1,500")."""
    digits = text.strip()
    sign, body = ("-", digits[1:]) if digits.startswith("-") else ("", digits)
    thousands = re.fullmatch(r"[1-9][0-9]{0,2}([,.][0-9]{3})+", body)
    decimal = re.fullmatch(r"[0-9]+[,.][0-9]+", body) and wanted == "number"
    whole, point = sign + re.sub("[,.]", "", body), f"{sign}{float(body.replace(',', '.')):g}" if decimal else ""
    if thousands and decimal:
        return f"write {whole}, or {point} if the separator is a decimal point"
    if thousands:
        return f"write {whole} (no thousands separators)"
    if decimal and "," in body:
        return f"write {point} (a dot is the decimal point)"
    return "write the number alone, without quotes"


# What YAML made of a value, and what the field takes, in the words of the fix.
_READ_AS = {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "a list", dict: "a mapping"}
_TAKES = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
          "array": "a list (- item lines, or [a, b])", "object": "a mapping (key: value lines indented beneath it)"}


def _wrong_type(instance: Any, wanted: str) -> str:
    """A value of the wrong type, with the fix for this field's type: quotes for text, none for a
    number or a boolean, and the comment a # starts (`primary: #C8102E` is no colour but nothing)."""
    takes = _TAKES.get(wanted, wanted)
    if instance is None:
        comment = (' (an unquoted # starts a comment: write a colour as "#C8102E", in quotes)'
                   if wanted == "string" else "")
        return f"no value is written here, and the field takes {takes}{comment}"
    read = _READ_AS.get(type(instance), type(instance).__name__)
    # (A list or a mapping may be a megabyte: it is named by its kind alone.)
    shown = quoted(instance) if isinstance(instance, str) else (
        "the value" if isinstance(instance, (list, dict)) else json.dumps(instance))
    if wanted == "string" and isinstance(instance, (bool, int, float)):
        fix = "put it in quotes"
    elif wanted == "boolean" and isinstance(instance, str):
        fix = "write true or false, without quotes"
    elif wanted in ("integer", "number") and isinstance(instance, str):
        fix = _number_fix(instance, wanted)
    elif wanted == "integer" and isinstance(instance, float):
        return f"{shown} is not a whole number: write one, without a decimal point"
    else:
        fix = f"write {takes}"
    return f"{shown} is {read}, and the field takes {takes}: {fix}"


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
        closed = _closed(schema)
        # metadata is the API server's ObjectMeta, not pruned by the CRD (its own checks are below).
        closed["properties"]["metadata"] = schema["properties"]["metadata"]
        out[crd["spec"]["names"]["kind"]] = _Validator(closed)
    return out


def _closed(schema: Any) -> Any:
    """The schema with its fields closed: the API server drops a field the CRD does not declare
    without a word (pruning), so a misspelt `delitionPolicy: Delete` would be lost after merge."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _closed(value) if key in ("properties", "items", "additionalProperties") else value
           for key, value in schema.items()}
    if "properties" in out:
        out["properties"] = {name: _closed(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


def _pattern(validator: Any, pattern: str, instance: Any, _: Any) -> Iterator[jsonschema.ValidationError]:
    """jsonschema's pattern check, with `$` as the API server reads it (see end_anchored)."""
    if validator.is_type(instance, "string") and not re.search(end_anchored(pattern), instance):
        words = PATTERN_WORDS.get(pattern)
        yield jsonschema.ValidationError(f"{quoted(instance)} {words}" if words else
                                         f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _pattern})


def _field(location: Iterable[str | int]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isprintable() and len(part) <= SHOWN_CHARACTERS:
            text += f".{part}" if text else part
        else:  # a key of a megabyte, or escape sequences for the reviewer's terminal: quoted and cut
            text += f"[{quoted(part)}]"
    return text or "(document)"


def _list(value: Any) -> list[Any]:
    """A field that should be a list, for a check across files (a wrong type has its own finding)."""
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _metadata_shape(meta: dict[str, Any]) -> str | None:
    """The part of metadata that is not what Kubernetes takes (kubectl would refuse it), if any."""
    for part in ("labels", "annotations"):
        value = meta.get(part) or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return part
    finalizers = meta.get("finalizers") or []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        return "finalizers"
    return None


# Kubernetes' own rules for label and annotation keys, label values and finalizer names (the API
# server refuses others, and the whole partner folder then fails to sync).
_NAME_PART = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_PREFIX = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")  # a DNS-1123 subdomain (at most 253: checked apart)
_NAME = re.compile(_NAME_PART)
_LABEL_VALUE = re.compile(rf"{_NAME_PART}?")
ANNOTATIONS_BYTES = 256 * 1024  # the API server's limit on all of an object's annotations together


def _qualified(key: str) -> bool:
    """Kubernetes' qualified name: [prefix/]name, the prefix a DNS subdomain (apimachinery's
    IsQualifiedName)."""
    prefix, slash, name = key.rpartition("/")
    return bool(_NAME.fullmatch(name)) and (not slash or (len(prefix) <= 253 and bool(_PREFIX.fullmatch(prefix))))
# What a tenants/ file writes of metadata; the rest is the API server's, or does harm from git
# (ownerReferences: the garbage collector deletes a Tenant whose owner does not exist, after every
# sync; finalizers: its deletion never ends; generateName: a new object every sync).
_WRITTEN_METADATA = ("name", "namespace", "labels", "annotations")


def _metadata_problems(meta: dict[str, Any], tenants_file: bool) -> list[tuple[tuple[str, ...], str, str]]:
    """(location, message, hint) for metadata the API server would refuse, or that a file under
    tenants/ has no business writing."""
    found = []
    for part in ("labels", "annotations"):
        for key, value in (meta.get(part) or {}).items():
            # (Annotation keys are judged in lower case, as the API server does.)
            if not _qualified(key.lower() if part == "annotations" else key):
                found.append((("metadata", part, key), f"{quoted(key[:100])} is not a valid {part[:-1]} key",
                              "a name of letters, digits, - _ . (at most 63), optionally after a DNS prefix and /"))
            elif part == "labels" and not _LABEL_VALUE.fullmatch(value):
                found.append((("metadata", part, key), f"{quoted(value[:100])} is not a valid label value",
                              "at most 63 letters, digits, - _ ., starting and ending with a letter or digit"))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in (meta.get("annotations") or {}).items())
    if size > ANNOTATIONS_BYTES:
        found.append((("metadata", "annotations"), f"the annotations take {size} bytes, at most {ANNOTATIONS_BYTES} "
                      "are allowed", "keep large data out of annotations"))
    for index, name in enumerate(meta.get("finalizers") or []):
        if not _qualified(name):
            found.append((("metadata", "finalizers", index), f"{quoted(name[:100])} is not a valid finalizer name",
                          "finalizers are names like example.com/cleanup"))
    if tenants_file:
        for key, value in meta.items():
            # (kubectl create --dry-run -o yaml writes creationTimestamp: null; harmless.)
            if key not in _WRITTEN_METADATA and not (key == "creationTimestamp" and value is None):
                found.append((("metadata", str(key)), f"not written in the tenants repository (of metadata, only "
                              f"{', '.join(_WRITTEN_METADATA)} are)",
                              "remove it; the API server and the operator set the rest"))
    return found


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


# Where documents may live in a tenants repository (paths inside it). Anything else is a finding.
PLATFORM_FOLDERS = ("platform", "partners")  # the platform team's: the only place for Namespaces
LAYOUT_HINT = ("documents live in platform/ and partners/ (the platform team's), tenants/<partner-id>/ "
               "(a partner's, at any depth below it), flux/ or argocd/: move the file into one of them")


@dataclass(frozen=True)
class Source:
    """A file to check: as named or found, where it is inside the repository, and where to read it."""

    path: Path  # findings name this
    inside: Path  # its path inside the repository, e.g. tenants/acme-it/kunde.yaml
    real: Path | None = None  # the resolved file, when path goes through a symlink inside the repository
    problem: str = ""  # why it is not read at all


def is_repository(path: Path) -> bool:
    """A folder holding tenants/, partners/ or platform/ is the root of a tenants repository."""
    return path.is_dir() and any((path / name).is_dir() for name in (*PLATFORM_FOLDERS, "tenants"))


def root_of(path: Path, repo: Path | None = None) -> Path:
    """The repository a path is checked in: `repo`; else the top of the git checkout holding the
    path when that is a repository (a folder a partner makes inside its own, holding platform/ or
    tenants/, cannot pose as the root); else the nearest repository at or above the path (also for
    a file named from outside it); else the current folder."""
    if repo is not None:
        return repo
    here = Path(os.path.abspath(path))
    folders = [here] if here.is_dir() else []
    folders += here.parents
    top = next((folder for folder in folders if (folder / ".git").exists()), None)
    if top is not None and is_repository(top):
        return top
    return next((folder for folder in folders if is_repository(folder)), Path("."))


class _Root:
    """The repository's folder, lexical and resolved, and the resolved folders below it (each resolved once)."""

    def __init__(self, root: Path) -> None:
        self.absolute = os.path.abspath(root)
        self.real = str(root.resolve())
        self.folders: dict[str, str] = {}

    def resolve(self, absolute: str) -> str:
        """Path.resolve of the file, resolving its folder only once for all the files in it."""
        if os.path.islink(absolute):
            return str(Path(absolute).resolve())
        folder, name = os.path.split(absolute)
        if folder not in self.folders:
            self.folders[folder] = os.path.realpath(folder)
        return os.path.join(self.folders[folder], name)

    def holds(self, real: str) -> bool:
        """Whether a resolved path is the resolved root or below it (realpath leaves no // or trailing /)."""
        return real == self.real or real.startswith(self.real.rstrip("/") + "/")


def _source(path: Path, root: _Root) -> Source:
    absolute = os.path.abspath(path)  # lexical: .. removed, links kept
    try:
        inside = Path(absolute).relative_to(root.absolute)
    except ValueError:
        return Source(path, path, problem=f"outside the repository {root.real}: run tenantry from the "
                                          "repository's root folder or pass that folder (or --repo)")
    real = root.resolve(absolute)
    if not root.holds(real):
        return Source(path, inside, problem=f"a symlink to {real}, outside the repository: tenant files must be "
                                            "regular files inside it (replace the link with the file)")
    return Source(path, inside, Path(real) if real != absolute else None)


def files_under(paths: Iterable[Path], repo: Path | None = None) -> list[Source]:
    """The YAML files named or found below the paths, each with its path inside the repository.

    The repository is `repo`, else a folder argument that is a repository root (see is_repository),
    else the current folder. Hidden entries at the top of a folder argument (.github, .git) are
    skipped; hidden ones deeper down are checked like any other. Symlinks are not followed into
    folders, and a symlinked file must resolve inside the repository.
    """
    found: list[Source] = []
    for path in paths:
        root = _Root(root_of(path, repo))
        if not (path.is_dir() and not path.is_symlink()):
            found.append(_source(path, root))
            continue
        for folder, folders, files in os.walk(path):
            here = Path(folder)
            if here == path:
                folders[:] = [f for f in folders if not f.startswith(".")]
                files = [f for f in files if not f.startswith(".") or _changes_the_source(f)]
            folders.sort()
            for name in folders:
                if (here / name).is_symlink():  # os.walk does not follow it: say so rather than skip it quietly
                    found.append(Source(here / name, here / name, problem="a symlink to a folder, which is not "
                                        "followed: replace it with the files themselves"))
            read = [name for name in sorted(files)
                    if Path(name).suffix in (".yaml", ".yml") and not _changes_the_source(name)]
            others = sorted(set(files).difference(read))
            found.extend(_source(here / name, root) for name in read)
            found.extend(source for name in others if (source := _unchecked(_source(here / name, root))) is not None)
    return found


SHOWN_PLACES = 3  # other places a finding about a repeated slug or domain names


def _applied_unchecked(name: str) -> bool:
    """A file kustomize, Flux or Argo CD would apply that validate does not read: JSON, Jsonnet, a
    kustomization without an extension, and .YAML or .Yml (validate reads .yaml and .yml)."""
    suffix = Path(name).suffix
    return suffix.lower() in (".json", ".jsonnet", ".libsonnet", ".yaml", ".yml") or name.lower() == "kustomization"


# Files that change which files Flux, kpt or Argo CD take, read in every folder: a `.sourceignore`
# of `*.yaml` under tenants/<partner>/ drops the partner's Tenants from the source, and Flux's prune
# then deletes them all, while every file left passes validate.
_SOURCE_CHANGERS = (".sourceignore", ".krmignore", ".argocd-source")


def _changes_the_source(name: str) -> bool:
    return name.lower().startswith(_SOURCE_CHANGERS)


def _unchecked(source: Source) -> Source | None:
    """Under tenants/ such a file would reach the cluster without validate's checks, or change what
    reaches it: a finding, not a skip; elsewhere, and any other file (a README, .gitignore), it is
    not read (None)."""
    if source.inside.parts[:1] != ("tenants",):
        return None
    if _changes_the_source(source.path.name):  # tenants/ itself too: every partner's Tenants
        problem = (f"a {source.path.name} file under tenants/, which makes Flux, kpt or Argo CD leave files out "
                   "(or set their parameters): Flux would prune the Tenants it hides. Remove it; the platform "
                   "sets what the source ignores (the GitRepository's spec.ignore)")
    elif area(source.inside) is not None and _applied_unchecked(source.path.name):
        problem = ("a file under tenants/ that tenantry does not check (only .yaml and .yml files are), but Flux, "
                   "Argo CD or kustomize may apply: write Tenants, Brandings, FeatureSets and Deals as .yaml files")
    else:
        return None
    return dataclasses.replace(source, problem=source.problem or problem)


def area(inside: Path) -> tuple[str, str] | None:
    """(top folder, partner id or "") of a path inside the repository; None outside the layout."""
    parts = inside.parts
    if len(parts) >= 3 and parts[0] == "tenants":
        return "tenants", parts[1]
    if len(parts) >= 2 and parts[0] in (*PLATFORM_FOLDERS, "flux", "argocd"):
        return parts[0], ""
    return None


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused (memory is still freed by reference counting).

    A run keeps every document until the cross-file checks, and the collector would walk them all
    again and again though they hold no cycles: a third of the run's time over 10,000 files.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Validator:
    """Collects findings over a set of files."""

    def __init__(self, platform_namespace: str = "tenantry-system", platform_domain: str = "") -> None:
        self.platform_namespace = platform_namespace
        self.platform_domain = platform_domain
        self.schemas = _schemas()
        self.quick = {kind: compile_check(validator.schema) for kind, validator in self.schemas.items()}
        self.findings: list[Finding] = []
        self.objects: list[_Object] = []
        self.partner_namespaces: dict[str, str] = {}  # partner id -> namespace
        self.namespaces: list[tuple[Document, str, str]] = []  # Namespace documents: (document, name, partner id)
        self.areas: dict[Path, tuple[str, str]] = {}  # file -> (top folder, partner id) inside the repository
        self.told: Counter[tuple[Path, int]] = Counter()  # findings per document

    def add(self, document: Document, location: tuple[str | int, ...], message: str, hint: str = "") -> None:
        # A document of a megabyte can hold a hundred thousand mistakes (one per key); a pull
        # request's log and its reviewer get the first ones, and are told there are more.
        told = self.told[document.path, document.index] = self.told[document.path, document.index] + 1
        if told == FINDINGS_PER_DOCUMENT + 1:
            self.findings.append(Finding(str(document.path), document.line(()), "(document)",
                                         f"more than {FINDINGS_PER_DOCUMENT} findings in this document: the first "
                                         f"{FINDINGS_PER_DOCUMENT} are shown; fix them and run again"))
        if told > FINDINGS_PER_DOCUMENT:
            return
        self.findings.append(Finding(str(document.path), document.line(location), _field(location), message, hint))

    def add_problem(self, document: Document, problem: Problem) -> None:
        self.add(document, problem.location, problem.message, problem.hint)

    def run(self, files: list[Source]) -> list[Finding]:
        with _without_cycle_collection():
            return self._run(files)

    def _run(self, files: list[Source]) -> list[Finding]:
        readable = [source for source in files if not source.problem]
        if readable and len(readable) == len(files) and all(area(source.inside) is None for source in readable):
            # Not a tenants repository at all (a wrong folder): one finding, not one per file.
            root = Path(str(readable[0].path)[:-len(str(readable[0].inside))] or ".")
            return [Finding(str(root), 1, "(repository)",
                            f"none of the {len(readable)} files here is where a tenants repository keeps its "
                            "documents: is this your tenants repository?", LAYOUT_HINT)]
        for source in files:
            where = area(source.inside)
            if source.problem:
                self.findings.append(Finding(str(source.path), 1, "(file)", source.problem))
                continue
            if where is None:
                self.findings.append(Finding(str(source.path), 1, "(file)",
                                             f"{source.inside} is outside the tenants repository's layout",
                                             LAYOUT_HINT))
                continue
            self.areas[source.path] = where
            try:
                documents = load(source.path, source.real)
            except SourceError as error:
                self.findings.append(Finding(str(source.path), error.line,
                                             _field(error.location) if error.location else "(file)", str(error)))
                continue
            except OSError as error:
                self.findings.append(Finding(str(source.path), 1, "(file)", f"cannot read: {error.strerror}"))
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
        folder, _ = self.areas.get(document.path, ("", ""))
        if not isinstance(kind, str | None) or not isinstance(data.get("metadata") or {}, dict):
            self.add(document, ("kind",) if not isinstance(kind, str | None) else ("metadata",),
                     "kind must be a string and metadata a mapping", "see `kubectl explain tenant`")
            return
        if (shape := _metadata_shape(data.get("metadata") or {})) is not None:
            self.add(document, ("metadata", shape), f"metadata.{shape} has the wrong shape",
                     "labels and annotations are mappings of strings, finalizers a list of strings")
            return
        for location, message, hint in _metadata_problems(data.get("metadata") or {}, folder == "tenants"):
            self.add(document, location, message, hint)
        if kind and kind.endswith("List") or "items" in data:
            # kubectl and kustomize apply the items of a List: objects validate would never see.
            self.add(document, ("kind",), f"a {kind} document: lists of objects are not checked, so not allowed",
                     "write each object as its own document (separated by ---)")
            return
        if kind == "Namespace":
            self._namespace(document, folder)
            return
        if kind not in SPEC_MODELS or data.get("apiVersion") != API_VERSION:
            if str(data.get("apiVersion", "")).startswith("tenantry.dev/"):
                self.add(document, ("apiVersion",), f"unknown tenantry kind or version {kind!r} "
                         f"{data.get('apiVersion')!r}", f"use apiVersion {API_VERSION} and a kind of Tenant, "
                         "Branding, FeatureSet or Deal")
            elif folder == "tenants":
                # Flux and Argo CD apply whatever a partner's folder holds (a kustomization.yaml with
                # patches and remote bases, a Chart.yaml, any object): unchecked, unless refused here.
                self.add(document, ("kind",), f"a {kind or 'document without a kind'} under tenants/, which holds "
                         "only Tenants, Brandings, FeatureSets and Deals: Flux or Argo CD would apply it "
                         "without these checks", "remove it; anything else is the platform team's, in "
                         "platform/, partners/, flux/ or argocd/")
            return
        valid = self._schema(document, kind) and self._model(document, kind)
        meta = data.get("metadata") or {}
        if not valid and (not isinstance(meta.get("name", ""), str) or not isinstance(meta.get("namespace", ""), str)):
            return  # (the schema said so) no name or namespace to check against others
        if not meta.get("namespace"):
            self.add(document, ("metadata",), "metadata.namespace is missing",
                     "set it to the partner namespace (or the platform namespace for shared plans)")
        elif folder == "platform" and meta.get("namespace") != self.platform_namespace:
            self.add(document, ("metadata", "namespace"), f"a {kind} under platform/ must be in the platform "
                     f"namespace {self.platform_namespace!r}, not {meta.get('namespace')!r}",
                     "a partner's objects belong in tenants/<partner-id>/")
        if folder not in ("tenants", "platform"):
            self.add(document, ("kind",), f"a {kind} under {folder}/, which holds no tenantry objects",
                     "a partner's objects belong in tenants/<partner-id>/, the platform's in platform/")
        self.objects.append(_Object(document, kind, str(meta.get("name", "")), str(meta.get("namespace", "")),
                                    data.get("spec") if isinstance(data.get("spec"), dict) else {}, valid))

    def _namespace(self, document: Document, folder: str) -> None:
        """Namespaces say which namespace is which partner's: only the platform team's folders define them."""
        meta = document.data.get("metadata") if isinstance(document.data.get("metadata"), dict) else {}
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        if folder not in PLATFORM_FOLDERS:
            self.add(document, ("kind",), f"a Namespace under {folder}/: Namespaces (and which partner each "
                     "belongs to) are defined only in partners/ and platform/, the platform team's folders",
                     "remove it; the platform team adds a partner's namespace in partners/")
            return
        self.namespaces.append((document, str(meta.get("name") or ""), str(labels.get(PARTNER_LABEL) or "")))

    def _partner_namespaces(self) -> None:
        """Each partner id has one namespace, each namespace at most one partner, the platform's none."""
        names: dict[str, list[tuple[Document, str]]] = defaultdict(list)  # partner id -> (document, namespace)
        partners: dict[str, set[str]] = defaultdict(set)  # namespace -> partner ids ("" for none)
        for document, name, partner in self.namespaces:
            partners[name].add(partner)
            if partner:
                names[partner].append((document, name))
                self.partner_namespaces.setdefault(partner, name)
            if partner and name == self.platform_namespace:
                self.add(document, ("metadata", "labels", PARTNER_LABEL), f"the platform namespace {name!r} "
                         f"cannot be partner {partner!r}'s", "give the partner a namespace of its own")
        for partner, claims in names.items():
            if len({name for _, name in claims}) > 1:
                for document, name in claims:
                    others = ", ".join(f"{n!r} ({d.path}:{d.line(('metadata', 'name'))})" for d, n in claims
                                       if n != name)
                    self.add(document, ("metadata", "labels", PARTNER_LABEL), f"partner {partner!r} is claimed by "
                             f"namespace {name!r} and by {others}", "a partner has exactly one namespace: remove "
                             "the label from all but one")
        for document, name, _ in self.namespaces:
            if len(partners[name]) > 1:
                self.add(document, ("metadata", "labels"), f"namespace {name!r} is defined more than once with "
                         f"different partners: {', '.join(sorted(p or '(none)' for p in partners[name]))}",
                         "define each namespace once")

    def _schema(self, document: Document, kind: str) -> bool:
        if self.quick[kind](document.data):  # surely valid: jsonschema's walk would find nothing
            return True
        validator = self.schemas[kind]
        errors = sorted(validator.iter_errors(document.data), key=lambda e: list(map(str, e.absolute_path)))
        for error in errors:
            if error.validator == "type" and "enum" in error.schema:
                continue  # the value is not one of the allowed ones either, and that finding names them
            location = tuple(error.absolute_path)
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                known = list(error.schema.get("properties", {}))
                unknown = [key for key in error.instance if key not in known]
                for key in unknown[:ERRORS_SHOWN]:  # (a hostile mapping may hold thousands)
                    self.add(document, (*location, key), unknown_field(str(key), known))
                if len(unknown) > ERRORS_SHOWN:
                    self.add(document, location, f"and {len(unknown) - ERRORS_SHOWN} more unknown fields")
                continue
            self.add(document, location, _message(error), _describe(validator.schema, location))
        return not errors

    def _model(self, document: Document, kind: str) -> bool:
        problems = spec_problems(kind, document.data.get("spec"))
        for problem in problems:
            self.add_problem(document, problem)
        return not problems

    def _across_files(self) -> None:
        self._partner_namespaces()
        self._partner_folders()
        tenants = [o for o in self.objects if o.kind == "Tenant"]
        self._unique(tenants, lambda o: [((("metadata", "name"),), o.name)], "tenant name (slug)", SLUG_HINT)
        self._unique(tenants, lambda o: [((("spec", "domains", i),), d) for i, d in
                                         enumerate(_list(o.spec.get("domains")))],
                     "custom domain", DOMAIN_HINT)
        for tenant in tenants:
            if reserved_slug(tenant.name):  # the platform's reserved names, as the webhook and the operator
                self.add_problem(tenant.document, slug_unavailable(tenant.name))
        self._references(tenants)
        self._domains(tenants)
        self._extends()
        self._deal_trials(tenants)

    def _deal_trials(self, tenants: list[_Object]) -> None:
        """A Deal's trial is a Tenant in state Trial of the same partner namespace."""
        on_trial = {(t.namespace, t.name): t.spec.get("state") == "Trial" for t in tenants}
        for deal in (o for o in self.objects if o.kind == "Deal" and o.valid and o.spec.get("trial")):
            key = (deal.namespace, deal.spec["trial"])
            if key not in on_trial:
                self.add(deal.document, ("spec", "trial"), f"no Tenant {key[1]!r} in {key[0]!r}",
                         "name the Tenant (in state Trial, in this namespace) the prospect is trying the platform with")
            elif not on_trial[key]:
                self.add(deal.document, ("spec", "trial"), f"Tenant {key[1]!r} is not in state Trial",
                         "a won deal's Tenant is a customer: remove the Deal, or set the Tenant's state to Trial")

    def _partner_folders(self) -> None:
        owners = {name: partner for partner, name in self.partner_namespaces.items()}
        for obj in self.objects:
            folder, partner = self.areas.get(obj.document.path, ("", ""))
            if folder != "tenants":
                continue
            # The partner's folder is applied as the partner's ServiceAccount; the webhook refuses these.
            if obj.kind == "FeatureSet" and obj.spec.get("resources") is not None:
                self.add_problem(obj.document, partner_plan_resources(obj.namespace))
            for problem in reserved_metadata_changes(None, obj.document.data.get("metadata") or {}):
                self.add_problem(obj.document, problem)
            expected = self.partner_namespaces.get(partner, f"partner-{partner}")
            owner = owners.get(expected, partner)
            if owner != partner:  # partner-<id> by default, but partners/ gave that name to another partner
                self.add(obj.document, ("metadata", "namespace"), f"tenants/{partner}/ has no namespace of its "
                         f"own in partners/, and {expected!r} is partner {owner!r}'s",
                         "the platform team adds the partner's Namespace in partners/")
            elif obj.namespace and obj.namespace != expected:
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
            for index, (obj, location) in enumerate(where):
                # At most SHOWN_PLACES others: N copies must not make N findings of N places each.
                others = [f"{o.document.path}:{o.document.line(loc)}"
                          for i, (o, loc) in enumerate(where[:SHOWN_PLACES + 1]) if i != index][:SHOWN_PLACES]
                more = len(where) - 1 - len(others)
                self.add(obj.document, location, f"{what} {value!r} is also used in {', '.join(others)}"
                         + (f" and {more} more place(s)" if more else ""), hint)

    def lookup(self, kind: str):
        specs = {(o.namespace, o.name): o.spec for o in self.objects if o.kind == kind}
        return lambda namespace, name: specs.get((namespace, name))

    def _references(self, tenants: list[_Object]) -> None:
        plans, looks = self.lookup("FeatureSet"), self.lookup("Branding")
        for tenant in tenants:
            plan = _mapping(tenant.spec.get("plan")).get("featureSet")
            if plan and plans(tenant.namespace, plan) is None and plans(self.platform_namespace, plan) is None:
                self.add_problem(tenant.document, missing_plan(tenant.namespace, plan, self.platform_namespace))
            chosen = tenant.spec.get("branding")
            wanted = branding_name(chosen if isinstance(chosen, str) else None)
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
             platform_domain: str = "", repo: Path | None = None) -> list[Finding]:
    """Findings on the files at `paths`. Files or folders inside a repository are checked against
    the repository's platform/ and partners/ and their partners' folders (the plans and Brandings
    they name), read for that only: their own findings are not reported."""
    paths = list(paths)
    # Paused until the run's documents are freed as well: else the collector's first pass after the
    # run walks every one of them once more.
    with _without_cycle_collection():
        sources = files_under(paths, repo)
        context = _context(paths, repo, sources)
        findings = Validator(platform_namespace, platform_domain).run([*sources, *context])
    if not context:
        return findings
    read_for_context = {str(source.path) for source in context}
    return [f for f in findings if f.file not in read_for_context]


def _context(paths: list[Path], repo: Path | None, sources: list[Source]) -> list[Source]:
    """The rest of the repository a part of it is checked against (none when the whole is)."""
    if not paths:
        return []
    root = root_of(paths[0], repo)
    if not is_repository(root) or any(os.path.abspath(p) == os.path.abspath(root_of(p, repo)) for p in paths):
        return []
    given = {source.inside for source in sources}
    # Its folders, not the root itself: a root reached through a symlink is not walked.
    folders = sorted(f for f in root.iterdir() if f.is_dir() and not f.is_symlink() and not f.name.startswith("."))
    return [source for source in files_under(folders, root) if source.inside not in given and not source.problem]


def by_file(findings: list[Finding]) -> Iterator[tuple[str, list[Finding]]]:
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        grouped[finding.file].append(finding)
    yield from sorted(grouped.items())
