"""The Tenant: one customer of a partner."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from tenantry.api.branding import HttpsUrl
from tenantry.api.common import (
    EMAIL,
    HOSTNAME,
    PHONE,
    SHOWN_TEXT,
    TIMESTAMP,
    ApiModel,
    Condition,
    Currency,
    Limits,
    LimitValue,
    ResourceName,
)
from tenantry.api.features import KNOWN_FEATURES, known_features

TenantState = Literal["Active", "Trial", "Suspended", "Cancelled"]
# RFC 3339 with a time zone, e.g. 2027-01-31T23:59:59Z: a trial ends at an instant, not on a local date.
DeletionPolicy = Literal["Retain", "Delete"]
Email = Annotated[str, Field(pattern=EMAIL, max_length=254)]
# Where a customer proves it owns a custom domain: a TXT record at this prefix + the domain.
CHALLENGE_PREFIX = "_tenantry-challenge."
# A DNS name has at most 253 characters (255 bytes on the wire); the challenge's name must fit too.
CUSTOM_DOMAIN_MAX_LENGTH = 253 - len(CHALLENGE_PREFIX)
CustomDomain = Annotated[str, Field(pattern=HOSTNAME, max_length=CUSTOM_DOMAIN_MAX_LENGTH)]

# The slug becomes the namespace "tenant-<slug>" and the subdomain "<slug>.<platform domain>".
SLUG_MAX_LENGTH = 40


class Contact(ApiModel):
    """The customer's main contact person."""

    name: str = Field(min_length=1, max_length=200, pattern=SHOWN_TEXT,
                      description="Full name of the contact person (no control characters).")
    email: Email = Field(description="E-mail address of the contact person.")
    phone: str | None = Field(
        default=None, pattern=PHONE, max_length=32, description="Phone number, e.g. +49 521 12345678."
    )


class Price(ApiModel):
    """What the customer pays."""

    monthly: float = Field(ge=0, le=10_000_000, description="Monthly recurring revenue in `currency`.")
    currency: Currency = Field(
        default="EUR", description="An ISO 4217 currency code in use, in capitals, e.g. EUR, USD, GBP or CHF."
    )


class Plan(ApiModel):
    """The commercial plan: which FeatureSet, how many seats, at what price."""

    feature_set: ResourceName = Field(
        description="Name of a FeatureSet in the partner namespace or, failing that, the platform "
        "namespace.",
    )
    seats: int = Field(ge=1, le=1_000_000, description="Number of licensed users.")
    price: Price | None = Field(default=None, description="Monthly price of this tenant.")


def _a_real_instant(text: str) -> str:
    """The pattern lets 2027-02-30 or 24:00 through: the calendar decides."""
    try:
        datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"{text!r} is not a real date and time ({error}); write e.g. 2027-01-31T23:59:59Z") from None
    return text


class Trial(ApiModel):
    """A free trial: served like an Active tenant until it ends, then Suspended by the operator."""

    # format date-time: the API server itself refuses 2027-02-30 (with the webhook down too), where
    # a spec the operator cannot parse would leave a trial unreconciled, i.e. served.
    ends: Annotated[str, AfterValidator(_a_real_instant)] = Field(
        pattern=TIMESTAMP, json_schema_extra={"format": "date-time"},
        description="When the trial ends (RFC 3339, e.g. 2027-01-31T23:59:59Z); the operator suspends the "
        "tenant then, keeping its data, and at the latest 90 days after the Tenant was created (after its "
        "namespace was, for a Tenant applied again over its retained namespace). Set state Active to convert.")


class Appointment(ApiModel):
    """The onboarding appointment: sent with the welcome e-mail as a calendar invitation (.ics)."""

    start: Annotated[str, AfterValidator(_a_real_instant)] = Field(
        pattern=TIMESTAMP, json_schema_extra={"format": "date-time"},
        description="When it starts (RFC 3339 with a time zone, e.g. 2027-01-14T10:00:00+01:00).")
    duration_minutes: int = Field(default=60, ge=15, le=480, description="How long it takes, in minutes.")
    # No < > and no control characters (C0, DEL, C1); the e-mail also puts it on one line.
    location: str | None = Field(
        default=None, max_length=200, pattern=r"^[^<>\x00-\x1f\x7f-\x9f]*$",
        description="Where it takes place, as plain text (an address, a room, 'Microsoft Teams').")
    url: HttpsUrl | None = Field(default=None, description="https link to join the meeting online (no user@ part, "
                                 "no quotes, spaces or parentheses).")


class Onboarding(ApiModel):
    """How the customer is brought on board."""

    appointment: Appointment | None = Field(
        default=None, description="The onboarding appointment; the welcome e-mail carries it as an invitation.")


class FeatureOverride(ApiModel):
    """A per-tenant override of one feature of the plan."""

    enabled: bool | None = Field(default=None, description="Switch the feature on or off for this tenant.")
    limits: Limits = Field(
        default_factory=dict, description="Included limits that replace the plan's, by limit name."
    )


class TenantSpec(ApiModel):
    """Desired state of a Tenant: one customer of a partner."""

    company: str = Field(min_length=1, max_length=200, pattern=SHOWN_TEXT,
                         description="Legal name of the customer (no control characters).")
    industry: str | None = Field(default=None, max_length=100, pattern=SHOWN_TEXT,
                                 description="Industry, for reports (no control characters).")
    employees: int | None = Field(default=None, ge=1, le=10_000_000, description="Number of employees, for reports.")
    support_level: str | None = Field(
        default=None, pattern=r"^[A-Za-z][A-Za-z0-9 ._-]{0,39}$",
        description="The customer's support level: one of the platform's tiers (the portal's supportTiers); "
        "empty: the first tier.",
    )
    contact: Contact = Field(description="The customer's main contact person.")
    state: TenantState = Field(
        default="Active",
        description="Lifecycle: Active (served), Trial (served until trial.ends, then suspended), Suspended "
        "(workloads blocked, data kept), Cancelled (offboarded according to deletionPolicy).",
    )
    trial: Trial | None = Field(default=None, description="The free trial; required when state is Trial.")
    plan: Plan = Field(description="The commercial plan: FeatureSet, seats and price.")
    features: Annotated[dict[str, FeatureOverride], BeforeValidator(known_features)] = Field(
        default_factory=dict, max_length=len(KNOWN_FEATURES),
        description="Overrides on top of the plan's features, by feature name."
    )
    branding: ResourceName | None = Field(
        default=None,
        description="Name of a Branding; else the partner's default Branding, else the platform's.",
    )
    domains: list[CustomDomain] = Field(
        default_factory=list,
        max_length=20,
        description=f"Custom domains, each a CNAME to <slug>.<platform domain>, at most {CUSTOM_DOMAIN_MAX_LENGTH} "
        f"characters (its ownership is proven at {CHALLENGE_PREFIX}<domain>).",
    )
    admins: list[Email] = Field(
        default_factory=list,
        max_length=50,
        description="E-mail addresses (Kubernetes user names) that get admin rights in the tenant "
        "namespace.",
    )
    onboarding: Onboarding | None = Field(default=None, description="The onboarding appointment.")
    deletion_policy: DeletionPolicy = Field(
        default="Retain",
        description="What happens to the tenant namespace and its data when the Tenant is deleted "
        "or cancelled: Retain (keep, labelled as orphaned) or Delete.",
    )

    @model_validator(mode="after")
    def _trial_has_an_end(self) -> TenantSpec:
        if self.state == "Trial" and self.trial is None:
            raise ValueError("state Trial needs trial.ends (when the trial ends, RFC 3339, e.g. 2027-01-31T23:59:59Z)")
        return self


class Usage(ApiModel):
    """Usage reported by the platform for the current period."""

    active_users: int = Field(default=0, ge=0, description="Users active in the current period.")
    requests: dict[str, LimitValue] = Field(
        default_factory=dict, description="Requests per feature in the current period."
    )
    reported_at: str | None = Field(default=None, description="When the usage was reported (RFC 3339).")


class DomainRecord(ApiModel):
    """A DNS record the customer must create."""

    type: str = Field(description="Record type: CNAME or TXT.")
    name: str = Field(description="Fully qualified record name.")
    value: str = Field(description="What the record must contain.")


class DomainStatus(ApiModel):
    """Verification state of one custom domain."""

    name: str = Field(description="The custom domain.")
    verified: bool = Field(description="Whether the domain is verified and routed.")
    records: list[DomainRecord] = Field(default_factory=list, description="The records the customer must create.")
    message: str = Field(default="", description="What is pending or wrong, and what to do.")
    verified_at: str | None = Field(default=None, description="When the domain was first verified (RFC 3339).")
    failing_since: str | None = Field(
        default=None, description="Since when re-verification fails; the route is withdrawn after the grace period."
    )
    expired_at: str | None = Field(
        default=None, description="When the claim expired (never verified in time) and the domain was released; "
        "remove the domain from spec.domains and add it back to claim it again."
    )


class RefusedRecipient(ApiModel):
    """A recipient the relay refused."""

    address: str = Field(description="The refused address.")
    reply: str = Field(description="The relay's reply, e.g. 550 5.1.1 mailbox unknown.")


class WelcomeRecord(ApiModel):
    """The welcome e-mail: due, sent, or failing (written by the operator only)."""

    message_id: str = Field(description="The Message-ID: the same for every attempt of one sending, so that a "
                            "relay can drop a duplicate after an operator crash between sending and recording.")
    resend_token: str = Field(default="", description="A digest of the tenantry.dev/resend-welcome annotation "
                              "this sending answers (empty: the first welcome).")
    due_since: str = Field(description="When the sending became due (RFC 3339).")
    sent_at: str | None = Field(default=None, description="When the relay accepted it (RFC 3339).")
    to: list[str] = Field(default_factory=list, description="The recipients the relay accepted.")
    refused: list[RefusedRecipient] = Field(default_factory=list, description="Recipients the relay refused; "
                                            "retried with back-off until accepted or no longer listed.")
    attempts: int = Field(default=0, ge=0, description="Failed attempts so far.")
    reason: str | None = Field(default=None, description="Why the last attempt failed.")
    message: str | None = Field(default=None, description="What went wrong and what to do.")
    next_attempt_at: str | None = Field(default=None, description="When the next attempt is due (RFC 3339).")
    skipped: str | None = Field(default=None, description="Why none is sent: ServedBefore (the tenant was Ready "
                                "and Active before welcome e-mails were sent; the resend annotation sends one).")


class ChecklistItem(ApiModel):
    """One step of the go-live."""

    name: str = Field(description="The step, e.g. NamespaceReady, DomainVerified:ki.example.de, WelcomeSent.")
    done: bool = Field(description="Whether it is done.")
    at: str | None = Field(default=None, description="When it was first done (RFC 3339).")
    message: str = Field(default="", description="What it waits for, while not done.")


def _opaque_object(schema: dict[str, Any]) -> None:
    """Any object, stored as it is (x-kubernetes-preserve-unknown-fields)."""
    schema.update({"type": "object", "x-kubernetes-preserve-unknown-fields": True})


class TenantStatus(ApiModel):
    """Observed state of a Tenant, written by the operator (usage by the platform's reporter)."""

    observed_generation: int = Field(default=0, ge=0, description="The generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready plus one condition per aspect of the tenant."
    )
    partner: str | None = Field(default=None, description="The partner this tenant belongs to.")
    namespace: str | None = Field(default=None, description="The tenant's own namespace.")
    url: str | None = Field(default=None, description="Where the tenant's users reach the platform.")
    plan: str | None = Field(
        default=None, description="The FeatureSet chain that was resolved, e.g. partner-acme/gold <- "
        "tenantry-system/business."
    )
    features: list[str] = Field(default_factory=list, description="Features enabled for this tenant.")
    branding: str | None = Field(default=None, description="The Branding in use, as namespace/name.")
    domains: list[DomainStatus] = Field(default_factory=list, description="Custom domains and what each needs.")
    state: str | None = Field(default=None, description="The state in effect: spec.state, except that a Trial "
                              "whose end has passed is Suspended.")
    usage: Usage | None = Field(default=None, description="Usage reported for the current period.")
    welcome: WelcomeRecord | None = Field(default=None, description="The welcome e-mail to the contact and admins.")
    onboarding: list[ChecklistItem] = Field(
        default_factory=list, description="The go-live checklist: each step, whether it is done and since when.")
    currency: Currency | None = Field(
        default=None, description="The billing currency fixed when the tenant was provisioned; metrics and reports "
        "use it. A platform admin changes it here (the status) when a contract really changes currency."
    )
    trial_started: str | None = Field(
        default=None, pattern=TIMESTAMP, json_schema_extra={"format": "date-time"},
        description="While spec.state is Trial: when its clock started (RFC 3339), the Tenant's "
        "creation, or its namespace's when older (a Tenant applied again over its retained namespace). The trial "
        "ends at the latest 90 days after it; `tenantry status` and the portal read it."
    )
    trial_ends: str | None = Field(
        default=None, pattern=TIMESTAMP, json_schema_extra={"format": "date-time"},
        description="While spec.state is Trial: when it ends in effect (RFC 3339): spec.trial.ends, at the latest "
        "90 days after trialStarted. The operator suspends the trial then; kubectl's Trial-Ends column shows it."
    )
    commission_rate: float | None = Field(
        default=None, ge=0, le=1, description="The partner's share of this tenant's MRR, as the operator counts "
        "it: the partner namespace's tenantry.dev/commission-rate annotation, else the platform's rate. "
        "`tenantry report` uses it."
    )
    kopf: Any = Field(
        default=None, description="The operator's own bookkeeping of its handlers (kopf progress), kept in the "
        "status, which only the operator may write, so that nobody can forge it.",
        json_schema_extra=_opaque_object,
    )


