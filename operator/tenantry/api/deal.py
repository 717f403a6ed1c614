"""The Deal: a prospect in a partner's sales pipeline, not yet a customer (pure model).

Deals live in git like everything else, in the partner's folder, and nothing is provisioned for
them: the operator leaves them alone; the partner portal's pipeline page and `tenantry validate`
read them. A prospect trying the platform has a Tenant in state Trial, which the Deal names.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from tenantry.api.common import DATE, SHOWN_TEXT, ApiModel, ResourceName
from tenantry.api.tenant import Contact, Price

DealStage = Literal["Discovery", "Demo", "Proposal", "Negotiation"]
STAGES: tuple[str, ...] = ("Discovery", "Demo", "Proposal", "Negotiation")  # in the order deals move


def _a_real_date(text: str) -> str:
    """The pattern lets 2027-02-30 through: the calendar decides (as the CRD's format date does)."""
    try:
        datetime.date.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{text!r} is not a real date ({error}); write e.g. 2027-03-31") from None
    return text


class DealSpec(ApiModel):
    """A prospect: who, how far along, and what it is expected to bring."""

    company: str = Field(min_length=1, max_length=200, pattern=SHOWN_TEXT,
                         description="The prospect's company name (no control characters).")
    stage: DealStage = Field(description="Discovery, Demo, Proposal or Negotiation.")
    expected: Price = Field(description="The expected monthly recurring revenue once won.")
    expected_close: Annotated[str, Field(pattern=DATE, json_schema_extra={"format": "date"}),
                              AfterValidator(_a_real_date)] | None = Field(
        default=None, description="When the deal is expected to close (YYYY-MM-DD).")
    contact: Contact | None = Field(default=None, description="The prospect's contact person.")
    trial: ResourceName | None = Field(
        default=None, description="The Tenant (in state Trial, in this namespace) the prospect is trying the "
        "platform with.")
    notes: str | None = Field(default=None, max_length=1000, pattern=r"^[^<>\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
                              description="Free text for the partner's sales team (no markup).")
