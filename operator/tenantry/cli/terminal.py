"""Text that others wrote, on the way to a terminal or a CI log."""

from __future__ import annotations


def shown(text: str) -> str:
    """Text from a pull request (a file name, a key, a value in a message) for a terminal or a CI
    log: characters that are not printable (line breaks that start a workflow command, escape
    sequences, bidirectional controls) as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
                   for c in text)


def markdown_cell(text: str) -> str:
    """A table cell of Markdown that shows `text` as it is: no link, emphasis or HTML of a partner's."""
    return "".join(f"\\{c}" if c in _MARKDOWN else c for c in shown(text))


_MARKDOWN = frozenset("\\`*_[]<>|~&")  # what CommonMark would read as markup inside a table cell
