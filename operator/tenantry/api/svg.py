"""Is an inline SVG logo safe to show in a white-labelled front end? (pure, no I/O)

A logo must not become a cross-site-scripting hole or a tracking pixel, whether a front end shows
it with <img>, parses it as XML, or pastes it into an HTML page (where an HTML parser, not an XML
one, reads it). So the check is an ALLOW-LIST, not a list of known attacks:

- only the drawing elements of SVG (shapes, text, gradients, clipping, masks, filters, <use>, <style>),
  in the SVG namespace; no scripts, links, images, animation, <foreignObject>;
- only geometry and presentation attributes, id/class/style and `href="#id"`: no event handlers, no
  URL other than a reference to an element of the logo itself;
- CSS (style= attributes, presentation attributes, <style> elements) with only painting, text and
  transform properties, no at-rules, no backslash escapes, no comments, and no function but colours,
  transforms and `url(#id)`;
- nothing two parsers read differently: no DTD, no CDATA section, no processing instruction, no
  comment containing < or >, no child elements in <style>, <title> and <desc>.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

SVG_MAX_BYTES = 64 * 1024
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
_XLINK = "http://www.w3.org/1999/xlink"
_XML = "http://www.w3.org/XML/1998/namespace"

_FILTER_PRIMITIVES = {"feBlend", "feColorMatrix", "feComponentTransfer", "feComposite", "feDropShadow", "feFlood",
                      "feFuncA", "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur", "feMerge", "feMergeNode",
                      "feMorphology", "feOffset"}
ALLOWED_ELEMENTS = frozenset({
    "svg", "g", "defs", "symbol", "use", "title", "desc", "style",
    "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
    "text", "tspan", "textPath",
    "linearGradient", "radialGradient", "stop", "clipPath", "mask", "pattern", "marker", "filter",
    *_FILTER_PRIMITIVES,
})
_ALLOWED_ELEMENTS = {name.lower() for name in ALLOWED_ELEMENTS}
# Elements whose content an HTML parser reads differently (HTML integration points, <style>): text only.
_TEXT_ONLY = {"style", "title", "desc"}
_WHY_NOT = {
    "script": "runs code", "handler": "runs code", "listener": "runs code",
    "foreignobject": "embeds HTML", "iframe": "embeds a page", "embed": "embeds content", "object": "embeds content",
    "a": "is a link", "image": "loads an image", "feimage": "loads an image", "audio": "loads media",
    "video": "loads media", "animate": "changes attributes (even links) at run time",
    "set": "changes attributes (even links) at run time", "animatetransform": "is animation",
    "animatemotion": "is animation", "animatecolor": "is animation", "discard": "is animation",
    "font": "breaks out of SVG in an HTML page", "font-face": "loads fonts", "cursor": "loads an image",
    "switch": "picks content by features", "view": "is not needed in a logo", "metadata": "is not needed in a logo",
}

# CSS properties, allowed in style= and <style>; those that are also SVG presentation attributes are
# allowed as attributes too, and their values are checked as CSS.
ALLOWED_CSS_PROPERTIES = frozenset({
    "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap",
    "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset", "opacity", "color",
    "stop-color", "stop-opacity", "flood-color", "flood-opacity", "lighting-color", "clip-path", "clip-rule",
    "mask", "filter", "marker", "marker-start", "marker-mid", "marker-end", "paint-order", "vector-effect",
    "shape-rendering", "text-rendering", "color-interpolation", "color-interpolation-filters", "mix-blend-mode",
    "isolation", "display", "visibility", "overflow", "transform", "transform-origin", "transform-box",
    "font", "font-family", "font-size", "font-weight", "font-style", "font-variant", "font-stretch",
    "letter-spacing", "word-spacing", "text-anchor", "text-decoration", "dominant-baseline",
    "alignment-baseline", "baseline-shift", "writing-mode", "direction", "unicode-bidi", "white-space",
    "enable-background",
})
ALLOWED_ATTRIBUTES = frozenset({
    # identity and styling
    "id", "class", "style", "lang", "space", "version", "baseprofile", "role", "aria-label", "aria-hidden",
    "aria-labelledby", "aria-describedby", "focusable", "data-name", "type",
    # geometry and coordinate systems
    "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy", "fr", "d", "points", "width",
    "height", "viewbox", "preserveaspectratio", "pathlength", "dx", "dy", "rotate", "textlength", "lengthadjust",
    "startoffset", "method", "spacing", "side", "refx", "refy", "markerwidth", "markerheight", "markerunits",
    "orient",
    # gradients, patterns, clipping, masks
    "offset", "gradientunits", "gradienttransform", "spreadmethod", "patternunits", "patterncontentunits",
    "patterntransform", "clippathunits", "maskunits", "maskcontentunits",
    # filters
    "filterunits", "primitiveunits", "in", "in2", "result", "stddeviation", "mode", "operator", "k1", "k2", "k3",
    "k4", "values", "radius", "tablevalues", "slope", "intercept", "amplitude", "exponent", "edgemode",
    # the one link: to an element of the logo itself
    "href",
    *ALLOWED_CSS_PROPERTIES,
})
_ATTRIBUTE_NAMESPACES = {None: None, _XLINK: {"href"}, _XML: {"space", "lang"}}
_CSS_FUNCTIONS = {"url", "rgb", "rgba", "hsl", "hsla", "matrix", "translate", "translatex", "translatey", "scale",
                  "scalex", "scaley", "rotate", "skewx", "skewy"}
_FRAGMENT = r"#[A-Za-z_][A-Za-z0-9_.:-]*"
_HREF = re.compile(_FRAGMENT)
_URL_FRAGMENT = re.compile(rf"url\(\s*(?:{_FRAGMENT}|\"{_FRAGMENT}\"|'{_FRAGMENT}')\s*\)", re.IGNORECASE)
_CSS_CHARACTERS = re.compile(r"[A-Za-z0-9 \t\r\n#.,;:%()!'\"_{}>+~/-]")
_STRING = re.compile(r"\"[^\"\n\r]*\"|'[^'\n\r]*'|[\"']")
_STRING_CONTENT = re.compile(r"[A-Za-z0-9 _.,#-]*")
# Matched at one position at a time, never searched for: a search that tries every position of a
# long run of spaces or letters takes quadratic or cubic time (64 KiB of spaces: days), and the
# webhook and the reconcile check logos on their event loop.
_SPACE = re.compile(r"\s*")
_RULE = re.compile(r"([^{}]*)\{([^{}]*)\}")
_NAME_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SELECTOR = re.compile(r"[A-Za-z0-9_\s.#,>+~:-]+")
_TYPE_SELECTOR = re.compile(r"(?<![A-Za-z0-9_.#:-])([A-Za-z][A-Za-z0-9_-]*)")
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*)\s*:")


def _split(name: str) -> tuple[str | None, str]:
    if name.startswith("{"):
        namespace, local = name[1:].split("}", 1)
        return namespace, local
    return None, name


class _Recorder:
    """A parser target that builds the tree and remembers what ElementTree would drop."""

    def __init__(self) -> None:
        self.builder = ElementTree.TreeBuilder()
        self.comments: list[str] = []
        self.instructions: list[str] = []

    def start(self, tag: str, attrs: dict[str, str]) -> Any:
        return self.builder.start(tag, attrs)

    def end(self, tag: str) -> Any:
        return self.builder.end(tag)

    def data(self, text: str) -> None:
        self.builder.data(text)

    def comment(self, text: str) -> None:
        self.comments.append(text)

    def pi(self, target: str, text: str | None = None) -> None:
        self.instructions.append(target)

    def close(self) -> ElementTree.Element:
        return self.builder.close()


def svg_problems(svg: str) -> list[str]:
    """What is unsafe or wrong about this SVG document; empty when it is fine."""
    size = len(svg.encode())
    if size > SVG_MAX_BYTES:
        return [f"is {size} bytes; at most {SVG_MAX_BYTES} (64 KiB) are allowed: simplify the logo or use logo.url"]
    if re.search(r"<!DOCTYPE|<!ENTITY", svg, re.IGNORECASE):
        return ["contains a DOCTYPE or ENTITY declaration, which is not allowed: remove it"]
    if re.search(r"<!\[CDATA\[", svg, re.IGNORECASE):
        return ["contains a CDATA section (<![CDATA[ ... ]]>), which an HTML page reads differently from an XML "
                "parser: remove it and write < and & in text as &lt; and &amp;"]
    recorder = _Recorder()
    try:
        parser = DefusedXMLParser(target=recorder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        parser.feed(svg)
        root = parser.close()
    except (ElementTree.ParseError, DefusedXmlException) as error:
        return [f"is not well-formed XML ({error}): export the logo again as plain SVG"]
    if root.tag not in ("svg", f"{{{SVG_NAMESPACE}}}svg"):
        namespace, tag = _split(root.tag)
        found = f"<{tag}>" + (f" in the namespace {namespace!r}" if namespace else "")
        return [f"has the root element {found}; an SVG document starts with <svg> (in the namespace "
                f"{SVG_NAMESPACE}): export the logo again as plain SVG"]
    problems = [f"has a processing instruction <?{target} ...?>, which is not allowed (an HTML page reads it "
                "differently, and xml-stylesheet loads CSS): remove it" for target in recorder.instructions]
    problems += ["has a comment containing < or >, which an HTML page reads differently from an XML parser: "
                 "remove the comment" for text in recorder.comments if "<" in text or ">" in text]
    for element in root.iter():
        problems += _element_problems(element)
    return list(dict.fromkeys(problems))


def _element_problems(element: ElementTree.Element) -> list[str]:
    namespace, tag = _split(element.tag)
    problems: list[str] = []
    allowed = tag.lower() in _ALLOWED_ELEMENTS
    if not allowed:
        why = _WHY_NOT.get(tag.lower(), "is not part of a plain drawing")
        problems.append(f"has a <{tag}> element, which {why}; it is not allowed (allowed elements: "
                        f"{', '.join(sorted(ALLOWED_ELEMENTS, key=str.lower))}): remove it")
    elif namespace not in (None, SVG_NAMESPACE):
        problems.append(f"has a <{tag}> element in the namespace {namespace!r}; only SVG elements "
                        f"({SVG_NAMESPACE}) are allowed: export the logo as plain SVG")
    if tag.lower() in _TEXT_ONLY and len(element):
        problems.append(f"has an element <{_split(element[0].tag)[1]}> inside <{tag}>, which may only hold text: "
                        "remove it")
    if tag.lower() == "style":
        problems += _stylesheet_problems("".join(element.itertext()))
    for raw_name, value in element.attrib.items():
        found = _attribute_problems(tag, raw_name, value)
        # On an element that goes anyway, name only the attributes that are attacks in their own right.
        if allowed or _split(raw_name)[1].lower() in ("href",) or _split(raw_name)[1].lower().startswith("on"):
            problems += found
    return problems


def _attribute_problems(tag: str, raw_name: str, value: str) -> list[str]:
    namespace, name = _split(raw_name)
    key = name.lower()
    where = f"{name}= on <{tag}>"
    if key.startswith("on"):
        return [f"has an event-handler attribute {where}, which runs code; it is not allowed: remove it"]
    if key == "href":
        return _href_problems(where, value)
    if key not in ALLOWED_ATTRIBUTES:
        return [f"has the attribute {where}, which is not allowed in a logo (allowed: geometry and presentation "
                "attributes, id, class, style and href=\"#id\"): remove it"]
    allowed_here = _ATTRIBUTE_NAMESPACES.get(namespace, set())
    if namespace is not None and (allowed_here is None or key not in allowed_here):
        return [f"has the attribute {where} in the namespace {namespace!r}, which is not allowed "
                "(editor-specific attributes are not needed): export the logo as plain SVG"]
    if key == "style":
        return _declarations_problems(value, f"style= on <{tag}>")
    if key in ALLOWED_CSS_PROPERTIES:
        return _css_value_problems(value, where)
    return []


def _href_problems(where: str, value: str) -> list[str]:
    if _HREF.fullmatch(value):
        return []
    scheme = _SCHEME.match(re.sub(r"[\x00-\x20]", "", value))
    if scheme and scheme.group(1).lower() in ("javascript", "vbscript", "data"):
        return [f"has a {scheme.group(1).lower()}: URL in {where}; only references to an element of the logo "
                "itself (\"#id\") are allowed: remove it"]
    return [f"references external content {value[:80]!r} in {where}; only references to an element of the logo "
            "itself (\"#id\") are allowed: embed it or drop it"]


def _stylesheet_problems(css: str) -> list[str]:
    where = "<style>"
    first = _css_text_problems(css, where)
    if first:
        return first
    problems: list[str] = []
    position = 0
    while rule := _RULE.match(css, _SPACE.match(css, position).end()):  # type: ignore[union-attr]
        position = rule.end()
        selector, body = rule.group(1), rule.group(2)
        if not _SELECTOR.fullmatch(selector):
            problems.append(f"has the selector {selector.strip()[:80]!r} in <style>; selectors may only use "
                            "element names, .class, #id, combinators and pseudo-classes: simplify it")
        else:
            for type_name in _TYPE_SELECTOR.findall(selector):
                if type_name.lower() not in _ALLOWED_ELEMENTS:
                    problems.append(f"has a selector for <{type_name}> in <style>, which would style the page "
                                    "around the logo: select the logo's elements by .class or #id")
        problems += _declarations_problems(body, where)
    position = _SPACE.match(css, position).end()  # type: ignore[union-attr]
    if position != len(css):
        problems.append(f"has CSS in <style> that is not a plain rule `selector {{ property: value }}` near "
                        f"{css[position:position + 40].strip()!r}: keep only such rules")
    return problems


def _declarations_problems(css: str, where: str) -> list[str]:
    problems = _css_text_problems(css, where)
    if problems:
        return problems
    if "{" in css or "}" in css:
        return [f"has braces in the CSS of {where}: write only `property: value` declarations"]
    for declaration in css.split(";"):  # safe: strings may not contain ';'
        if not declaration.strip():
            continue
        name, colon, value = declaration.partition(":")
        prop = name.strip().lower()
        if not colon or not re.fullmatch(r"[a-z-]+", prop):
            problems.append(f"has {declaration.strip()[:80]!r} in the CSS of {where}, which is not a "
                            "`property: value` declaration: fix or remove it")
        elif prop not in ALLOWED_CSS_PROPERTIES:
            problems.append(f"has the CSS property {prop!r} in {where}, which is not allowed (allowed properties: "
                            f"{', '.join(sorted(ALLOWED_CSS_PROPERTIES))}): remove it")
        else:
            problems += _css_value_problems(value, f"{prop} in {where}")
    return problems


def _css_text_problems(css: str, where: str) -> list[str]:
    """Characters and constructs CSS in a logo never needs, and that hide what a browser reads."""
    if "\\" in css:
        return [f"has a backslash in the CSS of {where}; CSS escapes are not allowed (they can hide url() and "
                "@import): write the characters themselves"]
    if "/*" in css:
        return [f"has a CSS comment /* */ in {where}, which is not allowed: remove it"]
    if "@" in css:
        return [f"has an at-rule (@import, @font-face, ...) in the CSS of {where}, which is not allowed: remove it"]
    bad = sorted({ch for ch in css if not _CSS_CHARACTERS.fullmatch(ch)})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:10])
        return [f"has the characters {shown} in the CSS of {where}, which are not allowed (letters, digits, spaces "
                "and # . , ; : % ( ) ! ' \" _ { } > + ~ / - are): remove them"]
    strings = [m.group(0) for m in _STRING.finditer(css)]
    if any(len(s) == 1 for s in strings):
        return [f"has an unterminated string in the CSS of {where}: close the quote"]
    return []


def _functions(value: str) -> Iterator[tuple[int, str, bool]]:
    """Each `(` of the value with the name before it: (where the name starts, the name, whether
    spaces stand between them). From each `(` back to the last character that is neither a space
    nor of a name, so that every character is looked at at most twice."""
    opening = value.find("(")
    while opening != -1:
        start = opening
        while start and value[start - 1].isspace():
            start -= 1
        spaced = start != opening
        end = start
        while start and value[start - 1] in _NAME_CHARACTERS:
            start -= 1
        yield start, value[start:end], spaced
        opening = value.find("(", opening + 1)


def _css_value_problems(value: str, where: str) -> list[str]:
    problems = _css_text_problems(value, where)
    if problems:
        return problems
    if any(ch in value for ch in ";{}"):
        return [f"has {value[:80]!r} as the value of {where}, which must be one CSS value: remove ; {{ }}"]
    for start, typed, space in _functions(value):
        name = typed.lower()
        if name == "url":
            if not _URL_FRAGMENT.match(value, start):
                return [f"has a url() in {where} that is not a reference to an element of the logo: only url(#id) "
                        "is allowed: embed the content or drop it"]
        elif name not in _CSS_FUNCTIONS or space:
            shown = f"{typed}(" if name else "( without a function name"
            return [f"has the CSS function {shown} in {where}, which is not allowed (allowed: url(#id), "
                    f"{', '.join(sorted(_CSS_FUNCTIONS - {'url'}))}): remove it"]
    odd = [m.group(0) for m in _STRING.finditer(value) if not _STRING_CONTENT.fullmatch(m.group(0)[1:-1])]
    if odd:
        return [f"has the CSS string {odd[0][:60]} in {where}; strings may only hold letters, digits, spaces and "
                ". , # _ - (font names): simplify it"]
    return []
