"""The Branding: a white-label look shared by the tenants that use it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from tenantry.api.common import EMAIL, HEX_COLOUR, HTTPS_URL, PATTERN_WORDS, PHONE, ApiModel
from tenantry.api.svg import SVG_MAX_BYTES, svg_problems

# Allow-lists, written so that Python's re (the CLI's jsonschema), Rust's regex (pydantic) and Go's RE2
# (the API server, from the CRD) read them alike: no \p{..}, no look-around, nested-class-safe escapes.
# A name shown to users: letters of any script, digits, spaces and ordinary punctuation. Not < > " ` & \,
# no control characters, no invisible or bidirectional formatting characters (U+2000-U+200F,
# U+2028-U+202F, U+205F-U+206F, U+FEFF; the soft hyphen U+00AD, the combining grapheme joiner
# U+034F, the Arabic letter mark U+061C, the Hangul fillers U+115F, U+1160, U+3164, U+FFA0, the
# Khmer inherent vowels U+17B4-U+17B5, the Mongolian vowel separator U+180E, the musical symbols'
# formatting characters U+1D173-U+1D17A), no private-use characters.
DISPLAY_NAME = ("^[ !#-%'-;=?-\\[\\]-_a-~\u00a1-\u00ac\u00ae-\u034e\u0350-\u061b\u061d-\u115e\u1161-\u17b3"
                "\u17b6-\u180d\u180f-\u1fff\u2010-\u2027\u2030-\u205e\u2070-\u3163\u3165-\ud7ff"
                "\uf900-\ufdcf\ufdf0-\ufefe\uff01-\uff9f\uffa1-\uffef\U00010000-\U0001d172\U0001d17b-\U0001ffff]+$")
# Plain text (a front end must insert it as text, never as HTML): no < or >, so even a front end that
# forgets to escape cannot be made to open a tag; no control characters but tab and newlines.
PLAIN_TEXT = r"^[^<>\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# Welcome texts per Branding: more languages than any product ships, and a bound on what one
# Branding may hold (the API server checks it too: maxProperties; 50 texts of at most 2,000 characters).
WELCOME_LANGUAGES = 50



def _explained(pattern: str, message: Callable[[str], str]) -> BeforeValidator:
    """The pattern's check, run first, with a message saying what is wrong and how to fix it (the
    pattern itself stays on the field, for the CRD)."""
    compiled = re.compile(pattern.removesuffix("$") + r"\Z")  # Python's $ also matches before a final newline

    def check(value: Any) -> Any:
        if isinstance(value, str) and value and not compiled.search(value):
            raise ValueError(message(value))
        return value
    return BeforeValidator(check)


def _name_message(value: str) -> str:
    allowed = re.compile(DISPLAY_NAME[1:-2])
    bad = ", ".join(dict.fromkeys(repr(ch) for ch in value if not allowed.fullmatch(ch)))
    return (f"contains {bad}, which is not allowed in a name (no < > \" ` & \\, control or invisible "
            "characters): use letters, digits, spaces and ordinary punctuation")


def _url_message(value: str) -> str:
    return f"{value[:80]!r} {PATTERN_WORDS[HTTPS_URL]}"


def _text_message(value: str) -> str:
    return ("contains < or > or a control character: a welcome text is plain text, shown as text, not HTML: "
            "write it without markup")


# The pattern before the explaining validator: pydantic then keeps it in the JSON schema (and the CRD).
HttpsUrl = Annotated[str, Field(pattern=HTTPS_URL, max_length=2048), _explained(HTTPS_URL, _url_message)]
ProductName = Annotated[str, Field(min_length=1, max_length=100, pattern=DISPLAY_NAME),
                        _explained(DISPLAY_NAME, _name_message)]
AssistantName = Annotated[str, Field(min_length=1, max_length=60, pattern=DISPLAY_NAME),
                          _explained(DISPLAY_NAME, _name_message)]
PlainText = Annotated[str, Field(max_length=2000, pattern=PLAIN_TEXT), _explained(PLAIN_TEXT, _text_message)]
Colour = Annotated[str, Field(pattern=HEX_COLOUR)]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]


class Logo(ApiModel):
    """The logo: an https URL or an inline SVG document (one of the two)."""

    url: HttpsUrl | None = Field(default=None, description="https URL of the logo image (no quotes, "
                                 "parentheses, spaces, < > or backslashes).")
    svg: str | None = Field(
        default=None, max_length=SVG_MAX_BYTES,
        description="Inline SVG document, at most 64 KiB, of plain drawing elements only (shapes, text, "
        "gradients, clipping, masks, filters, use, style); no scripts, event handlers, links, images, animation, "
        "CDATA or processing instructions; no URL but #id references; CSS only with painting and text "
        "properties, no escapes and no @-rules.",
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
    phone: str | None = Field(default=None, pattern=PHONE, max_length=32, description="Support phone number.")
    url: HttpsUrl | None = Field(default=None, description="Support web page (https).")


class BrandingSpec(ApiModel):
    """Desired white-label look: logo, colours, assistant name, welcome texts."""

    display_name: ProductName | None = Field(
        default=None,
        description="Product name shown to users: letters, digits, spaces and ordinary punctuation "
        "(no < > \" ` & \\ or control characters).",
    )
    logo: Logo | None = Field(default=None, description="The logo.")
    favicon: HttpsUrl | None = Field(default=None, description="https URL of the favicon.")
    colours: Colours = Field(description="Primary and secondary colour.")
    assistant_name: AssistantName | None = Field(
        default=None,
        description="Name of the AI assistant: letters, digits, spaces and ordinary punctuation "
        "(no < > \" ` & \\ or control characters).",
    )
    welcome: dict[LanguageCode, PlainText] = Field(
        default_factory=dict, max_length=WELCOME_LANGUAGES,
        description=f"Welcome message per language code (e.g. de, en), at most {WELCOME_LANGUAGES} languages: plain "
        "text, not HTML (front ends show it as text); no < or > and no control characters but tabs and newlines.",
    )
    support: Support | None = Field(default=None, description="Support contact, shown in the product and in the "
                                    "welcome e-mail.")
    email_from: str | None = Field(
        default=None, pattern=EMAIL, max_length=254,
        description="From address of the welcome e-mails of the tenants using this Branding; honoured only when its "
        "domain is one of the platform's allowed sender domains (chart smtp.allowedFromDomains), else the "
        "platform's From address is used.")
