"""Is an inline SVG logo safe to show in a white-labelled front end? (pure, no I/O)

A logo must not become a cross-site-scripting hole or a tracking pixel: no scripts, no event
handlers, no javascript: URLs, nothing loaded from elsewhere, no DTDs (entity expansion bombs).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

SVG_MAX_BYTES = 64 * 1024
_FORBIDDEN_ELEMENTS = {"script", "foreignobject", "iframe", "embed", "object", "audio", "video", "handler",
                       "listener"}
_LINK_ATTRIBUTES = {"href", "src", "action", "formaction", "data"}
_EXTERNAL_IN_CSS = re.compile(r"(url\s*\(\s*['\"]?\s*(?!#)[^)]|@import|expression\s*\()", re.IGNORECASE)
_JAVASCRIPT = re.compile(r"^\s*(javascript|vbscript|data)\s*:", re.IGNORECASE)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].lower()


def svg_problems(svg: str) -> list[str]:
    """What is unsafe or wrong about this SVG document; empty when it is fine."""
    size = len(svg.encode())
    if size > SVG_MAX_BYTES:
        return [f"is {size} bytes; at most {SVG_MAX_BYTES} (64 KiB) are allowed: simplify the logo or use logo.url"]
    if re.search(r"<!DOCTYPE|<!ENTITY", svg, re.IGNORECASE):
        return ["contains a DOCTYPE or ENTITY declaration, which is not allowed: remove it"]
    try:
        root = fromstring(svg, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ElementTree.ParseError, DefusedXmlException) as error:
        return [f"is not well-formed XML ({error}): export the logo again as plain SVG"]
    if _local(root.tag) != "svg":
        return [f"has the root element <{_local(root.tag)}>; an SVG document starts with <svg>"]
    problems: list[str] = []
    for element in root.iter():
        tag = _local(element.tag)
        if tag in _FORBIDDEN_ELEMENTS:
            problems.append(f"contains a <{tag}> element, which could run code or load content: remove it")
        if tag == "style" and element.text and _EXTERNAL_IN_CSS.search(element.text):
            problems.append("has a <style> that loads external content (url(), @import): inline the styles")
        for raw_name, value in element.attrib.items():
            name = _local(raw_name)
            if name.startswith("on"):
                problems.append(f"has an event-handler attribute {name}= on <{tag}>: remove it")
            elif _JAVASCRIPT.match(value):
                problems.append(f"has a {value.split(':', 1)[0].strip()}: URL in {name}= on <{tag}>: remove it")
            elif name in _LINK_ATTRIBUTES and not value.strip().startswith("#"):
                problems.append(f"references external content {value[:80]!r} in {name}= on <{tag}>: "
                                "embed it or drop it (only #fragment links are allowed)")
            elif name == "style" and _EXTERNAL_IN_CSS.search(value):
                problems.append(f"loads external content in style= on <{tag}>: inline it")
    return list(dict.fromkeys(problems))
