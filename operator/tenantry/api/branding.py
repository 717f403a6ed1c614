"""The Branding: a white-label look shared by the tenants that use it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from tenantry.api.common import EMAIL, HEX_COLOUR, ApiModel
from tenantry.api.svg import SVG_MAX_BYTES, svg_problems

HttpsUrl = Annotated[str, Field(pattern=r"^https://[^\s]+$", max_length=2048)]
Colour = Annotated[str, Field(pattern=HEX_COLOUR)]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]


class Logo(ApiModel):
    """The logo: an https URL or an inline SVG document (one of the two)."""

    url: HttpsUrl | None = Field(default=None, description="https URL of the logo image.")
    svg: str | None = Field(
        default=None, max_length=SVG_MAX_BYTES,
        description="Inline SVG document, at most 64 KiB; no scripts, event handlers, javascript: URLs "
        "or external references.",
    )

    @field_validator("svg")
    @classmethod
    def _safe_svg(cls, value: str | None) -> str | None:
        problems = svg_problems(value) if value is not None else []
        if problems:
            raise ValueError("the inline SVG " + "; ".join(problems))
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Logo:
        if (self.url is None) == (self.svg is None):
            raise ValueError("set exactly one of logo.url (https) and logo.svg (inline SVG)")
        return self


class Colours(ApiModel):
    """The brand colours."""

    primary: Colour = Field(description="Primary colour as #RRGGBB.")
    secondary: Colour | None = Field(default=None, description="Secondary colour as #RRGGBB.")
    text: Colour = Field(default="#FFFFFF", description="Colour of text on the primary colour, as #RRGGBB.")


class Support(ApiModel):
    """Where users of the white-labelled product get help."""

    email: str | None = Field(default=None, pattern=EMAIL, max_length=254, description="Support e-mail.")
    url: HttpsUrl | None = Field(default=None, description="Support web page (https).")


class BrandingSpec(ApiModel):
    """Desired white-label look: logo, colours, assistant name, welcome texts."""

    display_name: str | None = Field(default=None, max_length=100, description="Product name shown to users.")
    logo: Logo | None = Field(default=None, description="The logo.")
    favicon: HttpsUrl | None = Field(default=None, description="https URL of the favicon.")
    colours: Colours = Field(description="Primary and secondary colour.")
    assistant_name: str | None = Field(
        default=None, min_length=1, max_length=60, description="Name of the AI assistant."
    )
    welcome: dict[LanguageCode, Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=dict, description="Welcome message per language code (e.g. de, en)."
    )
    support: Support | None = Field(default=None, description="Support contact.")
