"""Shared building blocks of the API: the base model, patterns and the Condition type."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "tenantry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# RFC 1123 label: what Kubernetes accepts as a namespace name and DNS accepts as a label.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A fully qualified host name with at least two labels, lower case, no wildcard.
HOSTNAME = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
EMAIL = r"^[A-Za-z0-9._%+-]+@([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,}$"
PHONE = r"^\+?[0-9][0-9 ()/-]{4,30}$"
HEX_COLOUR = r"^#[0-9A-Fa-f]{6}$"
# Text shown as it is in kubectl's columns, terminals, e-mails and dashboards (a company, a person's
# name): no control characters (C0, DEL, C1: line breaks, ESC sequences), no line or paragraph
# separators, and no bidirectional embeddings, overrides or isolates, which reorder what is shown
# around them (the marks U+200E, U+200F and U+061C stay: right-to-left names need them). ASCII, in
# RE2's and Rust's escapes (a raw U+2028 in the CRD's YAML is a line break to a YAML 1.2 parser);
# the CLI's Python reads it through quickschema.end_anchored.
SHOWN_TEXT = r"^[^\x00-\x1f\x7f-\x9f\x{2028}-\x{202e}\x{2066}-\x{2069}]*$"
# An https URL: a host name, an optional port, then only URL characters that cannot end a quoted CSS or
# HTML attribute value: no quotes, < > \ ` ( ) { } | ^ [ ], no whitespace, no user:password@.
HTTPS_URL = (r"^https://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
             r"(:[0-9]{1,5})?([/?#][A-Za-z0-9._~!$&*+,;=:@%/?#-]*)?$")
TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"  # RFC 3339
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# What a value that does not match one of these patterns is told, instead of the pattern itself.
PATTERN_WORDS = {
    EMAIL: "is not an e-mail address: write it as name@example.com",
    SHOWN_TEXT: "contains a control character (a line break, tab or escape sequence) or a bidirectional "
                "override: write it as plain text on one line",
    HOSTNAME: "is not a DNS name: lower-case letters, digits and hyphens, in labels separated by dots "
              "(ki.example.de)",
    PHONE: "is not a phone number: digits, spaces and ( ) / -, optionally after a +",
    DNS_LABEL: "is not a DNS label: lower-case letters, digits and hyphens, starting and ending with a letter or "
               "digit (acme-shop)",
    HEX_COLOUR: "is not a colour as #RRGGBB: '#' and six hexadecimal digits (#1a2b3c)",
    HTTPS_URL: "is not an https URL this field accepts: write https://host[:port]/path without quotes, spaces, "
               "parentheses, < > \\ ` or user@; percent-encode such characters (%20, %28, %29, ...)",
    TIMESTAMP: "is not a date and time as 2027-01-31T23:59:59Z (or with an offset, +01:00)",
    DATE: "is not a date as 2027-01-31",
}
# Kubernetes resource quantity (e.g. 500m, 2, 4Gi, 1.5).
QUANTITY = r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"

ResourceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
Quantity = Annotated[str, Field(pattern=QUANTITY, max_length=32)]
LimitValue = Annotated[int, Field(ge=0, le=1_000_000_000)]
# A limit's name becomes a key of the tenant's flags, a label of tenantry_tenant_feature_limit and a
# line of the portal, and partners and tenant admins choose it: an allow-list, and a bounded number.
LIMIT_NAME = r"^[a-z][a-zA-Z0-9-]{0,62}$"
MAX_LIMITS = 32
Limits = Annotated[dict[Annotated[str, Field(min_length=1, max_length=63, pattern=LIMIT_NAME)], LimitValue],
                   Field(max_length=MAX_LIMITS)]

SHOWN_CHARACTERS = 40  # of a name from a document that a message repeats (its author wrote the rest)


def over_bound(count: int, unit: str, bound: int) -> str:
    """A value over its size bound, said by counting: never the value itself (a partner's megabyte)."""
    return f"{count} {unit}, at most {bound} allowed"


def quoted(name: str) -> str:
    """A name from a partner's document, for a message: JSON-quoted (control characters escaped) and
    cut to SHOWN_CHARACTERS (a document may hold a key of a megabyte)."""
    return json.dumps(name if len(name) <= SHOWN_CHARACTERS else f"{name[:SHOWN_CHARACTERS]}...")


# ISO 4217 currencies in use (2025). An allow-list: a currency becomes a label of the revenue
# metrics, so a made-up one would be a new series per code (and a wrong sum in a dashboard).
CURRENCIES = tuple(sorted("""
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP
    GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD
    KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN
    NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP
    SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND
    VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split()))


def _currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code in use, e.g. EUR, USD, GBP or CHF")
    return code


Currency = Annotated[str, AfterValidator(_currency), Field(json_schema_extra={"enum": list(CURRENCIES)})]


class ApiModel(BaseModel):
    """Base for every API model: camelCase on the wire, snake_case in Python, no unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=False,
    )


class Condition(ApiModel):
    """A Kubernetes-style condition (metav1.Condition), understood by `kubectl wait` and kstatus."""

    type: str = Field(description="Aspect this condition describes, e.g. Ready or NamespaceReady.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word naming why the condition has its status.")
    message: str = Field(default="", description="Human-readable detail: what is wrong and how to fix it.")
    last_transition_time: str = Field(
        description="When the status last changed (RFC 3339).",
    )
    observed_generation: int = Field(
        default=0, ge=0, description="The metadata.generation this condition was computed from."
    )
