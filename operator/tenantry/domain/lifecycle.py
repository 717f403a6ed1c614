"""Lifecycle decisions: is this a partner's tenant, may it hold its slug, which spec is valid."""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tenantry.api.common import PATTERN_WORDS, SHOWN_CHARACTERS, over_bound, quoted
from tenantry.api.tenant import TenantSpec
from tenantry.domain import naming
from tenantry.domain.status import Verdict


class Claim(enum.Enum):
    """Who holds the tenant namespace `tenant-<slug>`."""

    FREE = "free"          # no such namespace yet: we may create it
    OURS = "ours"          # held by this tenant (same partner namespace and slug)
    TAKEN = "taken"        # held by a tenant of the same slug elsewhere: first come wins
    FOREIGN = "foreign"    # exists without our marks: never touched


def claim(namespace: Mapping[str, Any] | None, partner_namespace: str, slug: str) -> Claim:
    if namespace is None:
        return Claim.FREE
    meta = namespace.get("metadata", {})
    owner = (meta.get("annotations") or {}).get(naming.OWNER_ANNOTATION)
    if not naming.is_managed(meta.get("labels")) or owner is None:
        return Claim.FOREIGN
    return Claim.OURS if owner == naming.owner_key(partner_namespace, slug) else Claim.TAKEN


def partner_of(namespace: Mapping[str, Any] | None) -> str | None:
    """The partner id of a namespace labelled tenantry.dev/partner, else None.

    Never a tenant namespace: one labelled tenantry.dev/tenant or managed by the operator is not a
    partner's, whatever its partner label says (every tenant namespace carries its partner's id, so
    a Tenant written into one, or into a tenant namespace a chart relabelled, would otherwise be
    provisioned and billed for that partner). The portal (portal/gather.py) reads partner
    namespaces the same way.
    """
    if namespace is None:
        return None
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    if naming.TENANT_LABEL in labels or naming.is_managed(labels):
        return None
    return labels.get(naming.PARTNER_LABEL) or None


def field_path(root: str, location: tuple) -> str:
    """`spec.plan.seats`, `spec.domains[0]`, or `spec.features["odd key"]` for keys that need quoting."""
    text = root
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif len(str(part)) <= SHOWN_CHARACTERS and re.fullmatch(r"[A-Za-z0-9_-]+", str(part)):
            text += f".{part}"
        else:
            text += f"[{quoted(str(part))}]"
    return text


def located(item: Mapping[str, Any]) -> tuple[tuple, str]:
    """One of pydantic's errors as (location, message), an invalid dictionary key said as the
    dictionary's problem: 'the key "..." ...'. pydantic locates a key error at the key followed by
    "[key]", with the key as its input: a field or key named "[key]" is not taken for one."""
    location, message = tuple(item["loc"]), str(item["msg"]).removeprefix("Value error, ")
    if len(location) >= 2 and location[-1] == "[key]" and item.get("input") == location[-2]:
        return location[:-2], f"the key {quoted(str(location[-2]))}: {message}"
    words = PATTERN_WORDS.get((item.get("ctx") or {}).get("pattern", "")) \
        if item.get("type") == "string_pattern_mismatch" else None
    if words:
        return location, f"{quoted(str(item.get('input')))} {words}"
    if item.get("type") == "too_long" and isinstance(item.get("input"), (dict, list)):
        # pydantic stops counting a mapping at its bound ("at most 50 items ..., not more"): say how many.
        unit = "entries" if isinstance(item["input"], dict) else "items"
        return location, f"{over_bound(len(item['input']), unit, item['ctx']['max_length'])}: remove some"
    return location, message


ERRORS_SHOWN = 20  # problems one message lists; a document can hold thousands (one per bad key)


def shown_problems(error: ValidationError) -> list[tuple[tuple, str]]:
    """The first ERRORS_SHOWN problems as (location, message), and then how many more there are."""
    problems = error.errors()
    shown = [located(item) for item in problems[:ERRORS_SHOWN]]
    if len(problems) > ERRORS_SHOWN:
        shown.append(((), f"and {len(problems) - ERRORS_SHOWN} more problems"))
    return shown


def error_lines(error: ValidationError, root: str) -> list[str]:
    """One line per problem shown: the field path as in YAML, and what is wrong with it."""
    return [f"{field_path(root, location)}: {message}" for location, message in shown_problems(error)]


def describe_errors(error: ValidationError, root: str) -> str:
    return "; ".join(error_lines(error, root))


def parse_tenant_spec(raw: Mapping[str, Any] | None) -> TenantSpec | str:
    """The validated spec, or a message naming each invalid field."""
    try:
        return TenantSpec.model_validate(raw or {})
    except ValidationError as error:
        return describe_errors(error, "spec")


TRIAL = "Trial"  # the condition of a tenant on trial


def timestamp(text: str) -> datetime.datetime:
    """An RFC 3339 time with its zone (the API's pattern guarantees the shape)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


MAX_TRIAL_DAYS = 90  # a trial ends at the latest this long after its Tenant was (first) created


def trial_clock(created: str | None, namespace: Mapping[str, Any] | None, partner_namespace: str,
                slug: str) -> str | None:
    """When the tenant's trial clock started: its Tenant's creation, or its own namespace's when
    that is older. A Tenant deleted with Retain and applied again keeps its namespace (and data),
    so it must keep its trial clock too: else deleting and re-applying the file would give the
    same customer a new MAX_TRIAL_DAYS, for ever. Neither a partner nor a tenant admin can write
    a namespace's creationTimestamp."""
    meta = (namespace or {}).get("metadata", {})
    if claim(namespace, partner_namespace, slug) is not Claim.OURS or meta.get("deletionTimestamp"):
        return created  # none yet, another's, or going with its data: nothing of this tenant's past
    provisioned = meta.get("creationTimestamp")
    if not isinstance(provisioned, str) or (created and timestamp(created) <= timestamp(provisioned)):
        return created
    return provisioned


def trial_clock_of(body: Mapping[str, Any]) -> str | None:
    """The trial clock of a stored Tenant, for views that cannot read namespaces (the CLI as a
    partner, the portal): the operator's status.trialStarted when it is earlier than the Tenant's
    creation (the only way it differs), else the creation."""
    created = (body.get("metadata") or {}).get("creationTimestamp")
    started = (body.get("status") or {}).get("trialStarted")
    try:
        if isinstance(started, str) and isinstance(created, str) and timestamp(started) < timestamp(created):
            return started
    except (ValueError, TypeError):  # not a time, or one without its zone
        pass  # the creation, as before the operator wrote one
    return created


def trial_end_of(spec: Mapping[str, Any], created: str | None) -> datetime.datetime | None:
    """When a tenant on trial stops being served as Active (see trial_end); None when it is not
    on trial or its end is not a real instant (then it counts as ended already)."""
    ends = (spec.get("trial") or {}).get("ends")
    if spec.get("state") != "Trial" or not isinstance(ends, str):
        return None
    try:
        return trial_end(ends, created)
    except ValueError:
        return None


def trial_end(ends: str, created: str | datetime.datetime | None) -> datetime.datetime:
    """When a trial really ends: its `ends`, at the latest MAX_TRIAL_DAYS after `created` (the trial
    clock, see trial_clock; RFC 3339 strings or instants; ValueError for one that is not a real
    instant)."""
    end = timestamp(ends)
    if created:
        start = timestamp(created) if isinstance(created, str) else created
        end = min(end, start + datetime.timedelta(days=MAX_TRIAL_DAYS))
    return end


def effective_state(spec: Mapping[str, Any], now: datetime.datetime,
                    created: str | datetime.datetime | None = None) -> str:
    """The state a tenant is in: its spec.state (Active when unset), except that a Trial whose end
    has passed (see trial_end), or whose end is not a real instant, is Suspended.

    The one answer to "which state is this tenant in": status.state (and so the State column of
    `kubectl get tenants`), the Ready condition, `tenantry report` and `status`, and the metrics'
    state label all come from here; git keeps saying Trial. `spec` is the stored spec (a mapping)."""
    state = str(spec.get("state") or "Active")
    trial = spec.get("trial")
    if state != "Trial":
        return state
    if not isinstance(trial, Mapping):
        return "Suspended"  # a Trial without an end is not running (see trial_state)
    ends = trial.get("ends")
    try:
        end = trial_end(ends, created) if isinstance(ends, str) else None
        running = end is not None and now < end
    except (ValueError, TypeError):  # not a real instant, or one without its zone
        running = False
    return "Trial" if running else "Suspended"


def trial_state(spec: TenantSpec, now: datetime.datetime, created: datetime.datetime | None = None
                ) -> tuple[TenantSpec, Verdict | None]:
    """The spec to serve, and the trial's condition: a Trial is served as an Active tenant until
    it ends, and is Suspended from then on (its data kept) until the partner converts it (state
    Active) or ends it (Cancelled). git keeps saying Trial: the operator enforces the end itself,
    at the latest MAX_TRIAL_DAYS after `created` (a trial moved ever later is not a free tenant
    forever), and an end it cannot read as ended (the webhook and validate refuse one anyway).
    Whether it ended is effective_state's decision."""
    if spec.state != "Trial":
        return spec, None
    if spec.trial is None:  # stored while the webhook was down (see tenantpass.admit)
        return spec.model_copy(update={"state": "Suspended"}), Verdict(
            TRIAL, "False", "TrialEnded", "state Trial without trial.ends: the trial counts as ended and the "
            "tenant is suspended, its data kept; add trial.ends (e.g. 2027-01-31T23:59:59Z), or set state Active "
            "to convert it")
    ended = effective_state({"state": spec.state, "trial": {"ends": spec.trial.ends}}, now, created) != "Trial"
    try:
        ends = trial_end(spec.trial.ends, None)
    except ValueError:
        return spec.model_copy(update={"state": "Suspended"}), Verdict(
            TRIAL, "False", "TrialEnded", f"trial.ends {spec.trial.ends!r} is not a real date and time: the trial "
            "counts as ended and the tenant is suspended, its data kept; write e.g. 2027-01-31T23:59:59Z, or set "
            "state Active to convert it")
    capped = created is not None and trial_end(spec.trial.ends, created) < ends
    if capped:
        ends = trial_end(spec.trial.ends, created)
    until = ends.strftime("%Y-%m-%dT%H:%M:%SZ") if capped else spec.trial.ends
    note = (f" (trials last at most {MAX_TRIAL_DAYS} days from the Tenant's first creation: a Tenant applied "
            "again over its retained namespace keeps the namespace's)") if capped else ""
    if not ended:
        return spec.model_copy(update={"state": "Active"}), Verdict(
            TRIAL, "True", "TrialRunning", f"the trial runs until {until}{note}; set state Active to convert it")
    return spec.model_copy(update={"state": "Suspended"}), Verdict(
        TRIAL, "False", "TrialEnded", f"the trial ended at {until}{note}: the tenant is suspended, no workloads may "
        "run, its data and access are kept; set state Active to convert it, or Cancelled to end it")
