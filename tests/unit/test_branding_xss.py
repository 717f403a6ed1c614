"""Branding values that reach browsers: public XSS payloads, each refused or made harmless.

Sources of the payloads: the OWASP XSS Filter Evasion Cheat Sheet, OWASP's guidance on SVG uploads,
the PortSwigger XSS cheat sheet (SVG, animate/set, use, foreignObject, xlink:href, data:, CDATA,
entities, CSS escapes, expression(), behavior, -moz-binding, image-set, @import, url() variants,
mixed case, whitespace/newline/NUL tricks, namespace tricks, <style> tail text), and the parser
differentials between XML and HTML (comments, processing instructions, CDATA, integration points).

Tested here:
- SVG_ATTACKS: each payload refused by svg_problems with a message that names what is wrong
  and says how to fix it; the ones marked `old` got through the deny-list this replaced
- tricky but harmless SVGs are accepted, and a real HTML parser (html5lib) reading them as part of
  a page finds only allowed SVG elements, no event handlers and no link but #fragments; the same
  holds for random documents built from hostile pieces (hypothesis): whatever svg_problems accepts
- the largest logo of spaces or letters in its CSS is judged in one pass (it took days), and CSS
  functions are found exactly as the old, quadratic search found them (hypothesis)
- CSS output: css_string() of any text parses back (real CSS tokenizer, tinycss2) as one string
  holding exactly that text; css() with hostile names and URLs (bypassing the model) keeps each
  value inside its string, and an HTML parser keeps the whole file inside one <style> element
- the model refuses markup in displayName/assistantName, unsafe logo/favicon/support URLs and
  < > in welcome texts, and accepts ordinary names in many scripts; branding.json is HTML-safe
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import html5lib
import pytest
import tinycss2
from hypothesis import event, given
from hypothesis import strategies as st
from pydantic import ValidationError

from tenantry.api import svg as svg_module
from tenantry.api.branding import BrandingSpec, Colours, Logo
from tenantry.api.svg import ALLOWED_ELEMENTS, svg_problems
from tenantry.domain.branding import ResolvedBranding, branding_data, css, css_string

NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
SVG_NS, XLINK_NS, HTML_NS = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://www.w3.org/1999/xhtml"
FIXES = ("remove", "export", "embed", "simplify", "write", "fix", "close", "keep", "select")


def svg(body: str) -> str:
    return f"<svg {NS}>{body}</svg>"


# (id, payload, words the message must contain, got through the old deny-list)
SVG_ATTACKS: list[tuple[str, str, str, bool]] = [
    # scripts and their disguises
    ("script", svg("<script>alert(1)</script>"), "<script>", False),
    ("script-mixed-case", svg("<ScRiPt>alert(1)</ScRiPt>"), "<ScRiPt>", False),
    ("script-svg-prefix", '<svg:svg xmlns:svg="http://www.w3.org/2000/svg"><svg:script>alert(1)</svg:script>'
     "</svg:svg>", "<script>", False),
    ("script-xlink-data", svg('<script xlink:href="data:text/javascript,alert(1)"/>'), "<script>", False),
    ("handler-svg-tiny", svg('<handler type="application/ecmascript">alert(1)</handler>'), "<handler>", False),
    # event handlers
    ("onload-root", f'<svg {NS} onload="alert(1)"/>', "onload=", False),
    ("onload-upper-case", f'<svg {NS} ONLOAD="alert(1)"/>', "ONLOAD=", False),
    ("onmouseover-rect", svg('<rect width="9" height="9" onmouseover="alert(1)"/>'), "onmouseover=", False),
    ("onclick-foreign-namespace", svg('<rect xmlns:x="urn:x" x:onclick="alert(1)"/>'), "onclick=", False),
    # links
    ("a-xlink-javascript", svg('<a xlink:href="javascript:alert(1)"><text>x</text></a>'), "javascript: URL", False),
    ("a-href-entity-javascript", svg('<a href="&#106;avascript:alert(1)"><text>x</text></a>'), "javascript: URL",
     False),
    ("a-href-tab-javascript", svg('<a href=" &#x09;javascript:alert(1)"><text>x</text></a>'), "javascript: URL",
     False),
    ("a-href-newline-javascript", svg('<a href="java&#10;script:alert(1)"><text>x</text></a>'), "javascript: URL",
     False),
    ("href-upper-case-attribute", svg('<use HREF="javascript:alert(1)"/>'), "javascript: URL", False),
    ("xlink-prefix-rebound", '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="urn:not-xlink">'
     '<a xlink:href="javascript:alert(1)"><text>x</text></a></svg>', "javascript: URL", False),
    ("use-data-url", svg('<use href="data:image/svg+xml;base64,PHN2ZyBpZD0ieCIgeG1sbnM9Imh0dHA6Ly93d3cudzMub3Jn'
                         'LzIwMDAvc3ZnIj48aW1hZ2UgaHJlZj0iMSIgb25lcnJvcj0iYWxlcnQoMSkiLz48L3N2Zz4=#x"/>'), "data: URL",
     False),
    ("use-external-sprite", svg('<use xlink:href="https://evil.example/sprite.svg#a"/>'), "external content", False),
    ("use-protocol-relative", svg('<use href="//evil.example/s.svg#a"/>'), "external content", False),
    ("use-xml-base", svg('<use xml:base="https://evil.example/" href="#a"/>'), "base=", True),
    ("image-tracking-pixel", svg('<image href="https://tracker.example/p.png"/>'), "<image>", False),
    ("image-data-svg", svg('<image href="data:image/svg+xml,&lt;svg onload=alert(1)&gt;"/>'), "data: URL", False),
    ("feimage-external", svg('<filter id="f"><feImage href="https://evil.example/x.png"/></filter>'), "<feImage>",
     False),
    # embedded HTML
    ("foreignobject-img", svg('<foreignObject><img xmlns="http://www.w3.org/1999/xhtml" src="x" '
                              'onerror="alert(1)"/></foreignObject>'), "<foreignObject>", False),
    ("foreignobject-iframe", svg('<foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" '
                                 'src="javascript:alert(1)"/></foreignObject>'), "<foreignObject>", False),
    ("iframe", svg('<iframe src="javascript:alert(1)"/>'), "<iframe>", False),
    ("embed", svg('<embed src="https://evil.example/x.swf"/>'), "<embed>", False),
    ("object", svg('<object data="https://evil.example/x.html"/>'), "<object>", False),
    ("xhtml-img-namespace", svg('<h:img xmlns:h="http://www.w3.org/1999/xhtml" src="x" onerror="alert(1)"/>'),
     "<img>", False),
    ("font-breaks-out-in-html", svg('<font color="red"><text>x</text></font>'), "<font>", True),
    ("title-holds-markup", svg('<title><text>x</text></title>'), "inside <title>", True),
    ("desc-holds-style", svg("<desc><style>rect{fill:red}</style></desc>"), "inside <desc>", True),
    ("meta-refresh", svg('<meta http-equiv="refresh" content="0;url=javascript:alert(1)"/>'), "<meta>", True),
    # animation that rewrites links
    ("animate-href-javascript", svg('<a href="#x"><animate attributeName="href" values="#x;javascript:alert(1)"/>'
                                    "<text>x</text></a>"), "<animate>", True),
    ("set-href-javascript", svg('<a href="#x"><set attributeName="href" to="java&#9;script:alert(1)"/>'
                                "<text>x</text></a>"), "<set>", True),
    ("set-xlink-href-use", svg('<use href="#a"><set attributeName="xlink:href" to="da&#10;ta:image/svg+xml,x"/></use>'),
     "<set>", True),
    ("animate-onbegin", svg('<animate onbegin="alert(1)" attributeName="x" dur="1s"/>'), "onbegin=", False),
    ("animatetransform", svg('<animateTransform attributeName="transform" type="rotate" dur="1s"/>'),
     "<animateTransform>", True),
    ("discard", svg('<discard begin="0s"/>'), "<discard>", True),
    # parser differentials: XML reads one thing, an HTML page another
    ("cdata-style-breakout", svg("<style><![CDATA[</style><img src=x onerror=alert(1)>]]></style>"), "CDATA", True),
    ("cdata-text-img", svg("<text><![CDATA[<img src=x onerror=alert(1)>]]></text>"), "CDATA", True),
    ("comment-abrupt-close", svg("<!--><img src=x onerror=alert(1)>-->"), "comment", True),
    ("comment-dash-close", svg("<!---><img src=x onerror=alert(1)>-->"), "comment", True),
    ("pi-bogus-comment", svg("<?x ><img src=x onerror=alert(1)>?>"), "processing instruction", True),
    ("pi-xml-stylesheet", '<?xml-stylesheet type="text/css" href="https://evil.example/x.css"?>' + svg("<g/>"),
     "processing instruction", True),
    ("doctype-entity-bomb", '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
     "<svg>&b;</svg>", "DOCTYPE", False),
    ("doctype-external-entity", '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg>&x;</svg>',
     "DOCTYPE", False),
    ("root-in-xhtml-namespace", '<svg xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></svg>',
     "root element", False),
    # CSS in <style> and style=
    ("style-import", svg("<style>@import url(https://evil.example/x.css);</style>"), "at-rule", False),
    ("style-import-escaped", svg("<style>@\\69mport 'https://evil.example/x.css';</style>"), "backslash", True),
    ("style-import-string", svg("<style>@import 'https://evil.example/x.css';</style>"), "at-rule", False),
    ("style-url-escaped", svg("<style>rect{fill:\\75 rl(https://evil.example/p.png)}</style>"), "backslash", True),
    ("style-attr-url-escaped", svg('<rect style="fill:\\75rl(https://evil.example/p.png)"/>'), "backslash", True),
    ("style-entity-backslash", svg('<rect style="fill:&#92;75rl(https://evil.example/p.png)"/>'), "backslash",
     True),
    ("style-tail-text", svg("<style>rect{fill:red}<g/>@import 'https://evil.example/x.css';</style>"),
     "inside <style>", True),
    ("style-image-set", svg("<rect style=\"fill:image-set('https://evil.example/p.png' 1x)\"/>"), "image-set(",
     True),
    ("style-webkit-image-set", svg("<style>rect{fill:-webkit-image-set('https://evil.example/p.png' 1x)}</style>"),
     "-webkit-image-set(", True),
    ("style-expression", svg('<rect style="width:expression(alert(1))"/>'), "'width'", False),
    ("style-expression-allowed-property", svg('<rect style="fill:expression(alert(1))"/>'), "expression(", False),
    ("style-expression-comment", svg("<style>rect{width:expr/**/ession(alert(1))}</style>"), "comment", True),
    ("style-behavior", svg('<rect style="behavior:url(#default#time2)"/>'), "'behavior'", True),
    ("style-moz-binding", svg('<rect style="-moz-binding:url(https://evil.example/xbl.xml#x)"/>'),
     "'-moz-binding'", False),
    ("style-url-upper-case", svg('<rect style="fill:URL(https://evil.example/p.png)"/>'), "url()", False),
    ("style-url-newline", svg('<rect style="fill:url(&#10;https://evil.example/p.png)"/>'), "url()", False),
    ("style-url-quoted", svg("<rect style=\"fill:url('https://evil.example/p.png')\"/>"), "url()", False),
    ("style-url-javascript", svg("<rect style=\"fill:url(javascript:alert(1))\"/>"), "url()", False),
    ("style-url-space-before-paren", svg("<rect style=\"fill:url (https://evil.example/p.png)\"/>"), "url()", False),
    ("style-url-fullwidth", svg('<rect style="fill:ｕｒｌ(https://evil.example/p.png)"/>'), "characters", True),
    ("style-background-image", svg('<rect style="background-image:url(#a)"/>'), "'background-image'", True),
    ("style-content", svg("<style>svg::before{content:'x'}</style>"), "'content'", True),
    ("style-targets-page", svg("<style>body{display:none}</style>"), "<body>", True),
    ("style-attribute-selector-exfiltration", svg("<style>input[value^=a]{fill:red}</style>"), "'['", True),
    ("style-entity-end-tag", svg("<style>rect{fill:red} &lt;/style&gt;&lt;img src=x onerror=alert(1)&gt;</style>"),
     "characters", True),
    ("style-unterminated-string", svg("<rect style=\"font-family:'Arial\"/>"), "unterminated", True),
    ("presentation-fill-external", svg('<rect fill="url(https://evil.example/p.png)"/>'), "url()", True),
    ("presentation-mask-external", svg('<rect mask="url(https://evil.example/m.svg#m)"/>'), "url()", True),
    ("presentation-filter-function", svg("<rect filter=\"drop-shadow(0 0 2px red) url('https://evil')\"/>"),
     "drop-shadow(", True),
    # XML tricks
    ("nul-character-reference", svg('<rect style="fill:u&#0;rl(https://evil.example/p.png)"/>'), "not well-formed",
     False),
    ("unknown-entity", svg("<text>&nbsp;</text>"), "not well-formed", False),
]
assert len(SVG_ATTACKS) >= 40 and len({a[0] for a in SVG_ATTACKS}) == len(SVG_ATTACKS)


@pytest.mark.parametrize(("payload", "words"), [(a[1], a[2]) for a in SVG_ATTACKS], ids=[a[0] for a in SVG_ATTACKS])
def test_svg_payload_is_refused_with_a_specific_message(payload: str, words: str) -> None:
    problems = svg_problems(payload)
    assert problems, "accepted"
    assert any(words in p for p in problems), problems
    for problem in problems:
        assert any(fix in problem.rsplit(":", 1)[-1] for fix in FIXES), f"says no fix: {problem}"


# The largest logo allowed, of what made the old searches take quadratic or cubic time: 64 KiB of
# spaces in <style> took days (4,000 took 84 s), letters in a value minutes. Each must be judged in
# one pass; the timeout only stops the old code (the new one takes milliseconds).
SLOW_BEFORE = {
    "spaces in <style>": "<style>{}x</style>".format(" " * 65_000),
    "letters in <style>": "<style>{}</style>".format("a" * 65_000),
    "spaces before a rule's brace": "<style>.a{}{{fill:red}}</style>".format(" " * 65_000),
    "letters in a declaration": "<style>.a{{fill:{}}}</style>".format("a" * 65_000),
    "letters in style=": '<rect style="fill:{}"/>'.format("a" * 65_000),
    "spaces in style=": '<rect style="fill:{}x"/>'.format(" " * 65_000),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("body", SLOW_BEFORE.values(), ids=SLOW_BEFORE.keys())
def test_the_largest_hostile_stylesheet_is_judged_in_one_pass(body: str) -> None:
    problems = svg_problems(f'<svg xmlns="{SVG_NS}">{body}</svg>')
    assert len(problems) <= 1 and all(len(p) < 400 for p in problems)


OLD_FUNCTION = re.compile(r"([A-Za-z0-9_-]*)(\s*)\(")  # the search _functions replaced


@given(st.text(alphabet="ab_- \t\n(", max_size=30))
def test_css_functions_are_found_as_the_old_search_found_them(value: str) -> None:
    assert list(svg_module._functions(value)) == [(m.start(), m.group(1), bool(m.group(2)))
                                           for m in OLD_FUNCTION.finditer(value)]


def test_the_payloads_include_ones_the_old_deny_list_let_through() -> None:
    assert sum(1 for a in SVG_ATTACKS if a[3]) >= 30  # checked against the old svg.py (git history)


def test_a_refused_element_names_what_is_allowed() -> None:
    (problem,) = svg_problems(svg('<animate attributeName="x" dur="1s"/>'))
    assert problem.startswith("has a <animate> element, which changes attributes (even links) at run time; "
                              "it is not allowed (allowed elements: circle, clipPath,")
    assert problem.endswith("): remove it")


# Accepted: they look odd, but are plain drawings; an HTML page must read them so too.
HARMLESS = [
    ("illustrator-export", '<?xml version="1.0" encoding="utf-8"?>\n<!-- Generator: Adobe Illustrator 24.0.0, SVG '
     'Export Plug-In . SVG Version: 6.00 Build 0)  -->\n<svg version="1.1" id="Layer_1" ' + NS + ' x="0px" y="0px" '
     'viewBox="0 0 100 40" style="enable-background:new 0 0 100 40;" xml:space="preserve">\n<style type="text/css">'
     "\n\t.st0{fill:#C8102E;}\n\t.st1{font-family:'Open Sans', Arial; font-size:12px;}\n</style>\n"
     '<g data-name="Layer 1"><rect class="st0" width="40" height="40"/><text class="st1" x="45" y="25">ACME'
     "</text></g>\n</svg>"),
    ("gradient-and-use", svg('<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/><stop offset="1" '
                             'style="stop-color:rgb(0,0,0)"/></linearGradient><circle id="c" r="4"/></defs>'
                             '<use href="#c" fill="url(#g)" transform="translate(5 5) rotate(45)"/>'
                             '<use xlink:href="#c" x="10"/>')),
    ("filter-and-clip", svg('<filter id="f"><feGaussianBlur stdDeviation="1"/></filter><clipPath id="p"><rect '
                            'width="5" height="5"/></clipPath><g filter="url(#f)" clip-path="url(\'#p\')"><path '
                            'd="M0 0L10 10"/></g>')),
    ("markup-as-text", svg("<title>&lt;/title&gt;&lt;img src=x onerror=alert(1)&gt;</title><text>&lt;script&gt;"
                           "alert(1)&lt;/script&gt;</text>")),
    ("markup-in-attribute", svg('<rect aria-label="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" '
                                "class='\"&gt;&lt;script&gt;alert(1)&lt;/script&gt;'/>")),
    ("harmless-comment", svg("<!-- made by hand, version 2 --><g/>")),
    ("selectors", svg("<style>svg > g.a, #logo path:hover, text + tspan{fill:#000;stroke-width:2 !important}"
                      "</style>")),
]


def assert_html_reads_a_plain_drawing(document: str) -> None:
    """Pasted into a page, the document is read by a real HTML parser as allowed SVG elements only,
    with no event handler, no link but #fragments, no CSS loading anything, and the page goes on after it."""
    page = html5lib.parse(f"<!DOCTYPE html><html><body><div>{document}</div><p id=after></p></body></html>")
    body = page.find(f"{{{HTML_NS}}}body")
    assert body is not None and len(body) == 2 and body[1].get("id") == "after", f"the page changed: {document!r}"
    allowed = {f"{{{SVG_NS}}}{name}" for name in ALLOWED_ELEMENTS}
    for element in body[0].iter():
        if element is body[0] or not isinstance(element.tag, str):  # comments
            continue
        assert element.tag in allowed, f"an HTML parser reads {element.tag} out of {document!r}"
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            assert not local.startswith("on") and (local != "href" or value.startswith("#")), (name, document)
        if element.tag == f"{{{SVG_NS}}}style":
            css_text = element.text or ""
            assert "url(" not in css_text.replace("url(#", "") and "@" not in css_text, document


@pytest.mark.parametrize("payload", [h[1] for h in HARMLESS], ids=[h[0] for h in HARMLESS])
def test_harmless_svg_is_accepted_and_an_html_parser_agrees(payload: str) -> None:
    assert svg_problems(payload) == []
    assert_html_reads_a_plain_drawing(payload)


# --- CSS output -----------------------------------------------------------------------------------------

def _one_string(css_text: str) -> str:
    tokens = [t for t in tinycss2.parse_component_value_list(css_text) if t.type != "whitespace"]
    assert len(tokens) == 1 and tokens[0].type == "string", tokens
    return str(tokens[0].value)


def _as_css_reads_it(text: str) -> str:
    """What a CSS parser gives back for a string with this text: NUL and surrogates become U+FFFD."""
    return "".join("\ufffd" if ch == "\0" or unicodedata.category(ch) == "Cs" else ch for ch in text)


@given(st.text())
def test_css_string_holds_any_text_and_nothing_leaves_it(text: str) -> None:
    quoted = css_string(text)
    assert _one_string(quoted) == _as_css_reads_it(text)
    inner = quoted[1:-1]
    assert not any(ch in inner for ch in "\"'<>;{}()\n\r\f@&`*")


HOSTILE_NAMES = [
    '"; } body { background: url(https://evil.example/x) } :root { --x: "',
    "</style><script>alert(1)</script>",
    "\\22 ; color: red",
    "a\nb",
    "*/ /* ",
    "');x:url(https://evil.example/x",
    "\\",
    "<!--",
    "\u2028\u2029",
]
HOSTILE_URLS = [
    'https://x.example/a.png"); background: url("https://evil.example/',
    "https://x.example/</style><script>alert(1)</script>",
    "https://x.example/a\\",
    "https://x.example/a)",
    "https://x.example/a' b",
    "javascript:alert(1)",
]


def _unchecked_spec(name: str, url: str) -> BrandingSpec:
    """Values that the model refuses, put in anyway: css() must stay safe on its own."""
    return BrandingSpec.model_construct(
        colours=Colours(primary="#1F4E79"), assistant_name=name, logo=Logo.model_construct(url=url, svg=None),
        display_name=None, favicon=None, welcome={}, support=None)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_css_keeps_hostile_values_inside_their_strings(name: str, url: str) -> None:
    text = css(_unchecked_spec(name, url))
    (rule,) = tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True)
    assert rule.type == "qualified-rule" and tinycss2.serialize(rule.prelude).strip() == ":root"
    declarations = {d.name: d for d in tinycss2.parse_blocks_contents(rule.content, skip_comments=True,
                                                                      skip_whitespace=True)}
    assert set(declarations) == {"--brand-primary", "--brand-on-primary", "--brand-logo-url", "--brand-assistant-name"}
    assert _one_string(tinycss2.serialize(declarations["--brand-assistant-name"].value)) == name
    (function,) = [t for t in declarations["--brand-logo-url"].value if t.type != "whitespace"]
    assert function.type == "function" and function.lower_name == "url"
    assert [t.value for t in function.arguments if t.type != "whitespace"] == [url]
    # Pasted into a page, the whole file stays inside its <style> element.
    page = html5lib.parse(f"<html><head><style>{text}</style></head><body><p id=after></p></body></html>")
    style = page.find(f".//{{{HTML_NS}}}style")
    assert style is not None and style.text == text
    assert [e.tag.rsplit("}", 1)[-1] for e in page.iter()] == ["html", "head", "style", "body", "p"]


# --- the model and the CRD schema --------------------------------------------------------------------------

BASE: dict[str, Any] = {"colours": {"primary": "#1F4E79"}}
BAD_NAMES = ["<img src=x onerror=alert(1)>", 'Ada"', "Ada`", "Q&A", "a>b", "tab\there", "nul\0", "new\nline",
             "\u202eevil", "zero\u200bwidth", "\x7f", "back\\slash", "\ue000private"]
GOOD_NAMES = ["Ada", "Süd Cloud KI", "Grüß Gott", "O'Brien's KI", "KI-Plattform (Beta) 2.0", "Ассистент",
              "日本語アシスタント", "Ada 🤖", "„Emma“ – Assistentin", "Hilfe? Ja! #1 @ ACME, 100 %"]
BAD_URLS = ['https://x.example/a.png"', "https://x.example/a b.png", "https://x.example/a(1).png",
            "https://x.example/<svg>", "https://x.example/a\\b", "javascript:alert(1)", "http://x.example/a.png",
            "data:image/png;base64,AAAA", "https://user:pw@evil.example/", "https://x.example/a'b", "https:///x",
            " https://x.example/a.png", "https://x.example/a.png\n"]
GOOD_URLS = ["https://cdn.acme.example/logo.png", "https://x.example:8443/a/b_c-d~e.svg?v=2&w=3#top",
             "https://acme-it.example/hilfe", "https://x.example/%E2%82%AC.png"]


@pytest.mark.parametrize("field", ["displayName", "assistantName"])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_with_markup_or_control_characters_are_refused(field: str, name: str) -> None:
    with pytest.raises(ValidationError) as error:
        BrandingSpec.model_validate({**BASE, field: name})
    assert field in str(error.value) and "use letters, digits, spaces and ordinary punctuation" in str(error.value)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_ordinary_names_in_many_scripts_are_accepted(name: str) -> None:
    spec = BrandingSpec.model_validate({**BASE, "displayName": name, "assistantName": name[:60]})
    assert spec.display_name == name


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("where", ["logo", "favicon", "support"])
def test_urls_that_could_leave_an_attribute_or_css_are_refused(url: str, where: str) -> None:
    raw = {"logo": {"url": url}} if where == "logo" else {"favicon": url} if where == "favicon" else \
        {"support": {"url": url}}
    with pytest.raises(ValidationError) as error:
        BrandingSpec.model_validate({**BASE, **raw})
    assert where in str(error.value) and "percent-encode" in str(error.value)


@pytest.mark.parametrize("url", GOOD_URLS)
def test_ordinary_https_urls_are_accepted(url: str) -> None:
    spec = BrandingSpec.model_validate({**BASE, "logo": {"url": url}, "favicon": url, "support": {"url": url}})
    assert spec.favicon == url


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", "a > b", "bell\x07"])
def test_welcome_text_is_plain_text(text: str) -> None:
    with pytest.raises(ValidationError) as error:
        BrandingSpec.model_validate({**BASE, "welcome": {"de": text}})
    assert "welcome.de" in str(error.value) and "plain text" in str(error.value)
    assert BrandingSpec.model_validate({**BASE, "welcome": {"de": "Q&A: frag mich!\nZeile 2\tOK"}})


def test_branding_json_is_safe_inside_a_script_element() -> None:
    logo = svg("<title>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title><rect width='1' height='1'/>")
    spec = BrandingSpec.model_validate({**BASE, "logo": {"svg": logo}, "welcome": {"de": "Q&A \u2028"}})
    text = branding_data(ResolvedBranding("partner/x", spec))["branding.json"]
    assert not any(ch in text for ch in "<>&\u2028\u2029")
    assert json.loads(text)["logo"]["svg"] == logo and json.loads(text)["welcome"]["de"] == "Q&A \u2028"


# --- differential: whatever the check accepts, an HTML parser reads as a plain drawing ------------------

_TAGS = ["g", "rect", "text", "title", "desc", "style", "use", "a", "script", "set", "animate", "img", "font",
         "foreignObject", "svg:script", "p", "image"]
_ATTRIBUTES = ["fill", "href", "xlink:href", "HREF", "onload", "style", "class", "to", "attributeName", "src"]
_VALUES = ["#a", "javascript:alert(1)", "url(#a)", "url(https://evil.example/x)", '"><img src=x onerror=alert(1)>',
           "<img src=x onerror=alert(1)>", "fill:red", "fill:\\75rl(x)", "&#106;avascript:alert(1)"]
_TEXTS = ["x", "&lt;img src=x onerror=alert(1)&gt;", "<!--><img src=x onerror=alert(1)>-->", "<!-- ok -->",
          "<![CDATA[</style><img src=x onerror=alert(1)>]]>", "<?x ><img src=x onerror=alert(1)>?>",
          "rect{fill:red}", "@import 'https://evil.example/x.css';", "</style><img src=x onerror=alert(1)>"]


def _attribute(name: str, value: str, escape: bool) -> str:
    if escape:
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return f' {name}="{value}"'


_ATTRIBUTE = st.builds(_attribute, st.sampled_from(_ATTRIBUTES), st.sampled_from(_VALUES), st.booleans())
_ATTRIBUTES_OF_ONE = st.lists(_ATTRIBUTE, max_size=3, unique_by=lambda a: a.split("=")[0])
_NODES = st.recursive(
    st.sampled_from(_TEXTS),
    lambda children: st.builds(lambda tag, attrs, kids: f"<{tag}{''.join(attrs)}>{''.join(kids)}</{tag}>",
                               st.sampled_from(_TAGS), _ATTRIBUTES_OF_ONE, st.lists(children, max_size=3)),
    max_leaves=8)


@given(st.lists(_NODES, max_size=4))
def test_whatever_is_accepted_an_html_parser_reads_as_a_plain_drawing(nodes: list[str]) -> None:
    document = f'<svg {NS} xmlns:svg="http://www.w3.org/2000/svg">{"".join(nodes)}</svg>'
    if svg_problems(document):
        event("refused")
        return
    event("accepted")
    assert_html_reads_a_plain_drawing(document)
