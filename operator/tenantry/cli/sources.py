"""Reading YAML files for `tenantry validate`: documents with the line of every field.

Partners' files are untrusted input: aliases (the raw material of YAML bombs), huge files and
deep nesting are refused with a message instead of being expanded (scalar aliases too: repeated,
one long value multiplies in every error message that quotes it). Only regular files are read
(checked on the opened file, so a symlink to /dev/zero or a FIFO is refused, not read forever),
symlinks are never followed when opening, and at most MAX_FILE_BYTES + 1 bytes are read
whatever the file claims its size is.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tenantry.api.common import quoted

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32


class SourceError(Exception):
    """A file that cannot be read as YAML documents; `line` is 1-based, `location` the field's path
    where one is known."""

    def __init__(self, message: str, line: int = 1, location: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.line, self.location = line, location


@dataclass(frozen=True)
class Document:
    """One YAML document of a file, with a map from field paths to line numbers."""

    path: Path
    index: int
    data: Any
    lines: dict[tuple[str | int, ...], int]

    def line(self, location: tuple[str | int, ...]) -> int:
        """The line of the deepest known part of a field path (1-based)."""
        for cut in range(len(location), -1, -1):
            if location[:cut] in self.lines:
                return self.lines[location[:cut]]
        return 1


# libyaml's parser when present (ten times faster than pure Python for 10,000 files).
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The implicit tags (int, bool, null, ...) a plain scalar may have, by its first character.
_WILDCARD = tuple(_Base.yaml_implicit_resolvers.get(None, []))
_IMPLICIT = {first: tuple(resolvers) + _WILDCARD for first, resolvers in _Base.yaml_implicit_resolvers.items()
             if first is not None}
_DEFAULT_TAGS = {ScalarNode: _Base.DEFAULT_SCALAR_TAG, SequenceNode: _Base.DEFAULT_SEQUENCE_TAG,
                 MappingNode: _Base.DEFAULT_MAPPING_TAG}


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader, answering the parser's question of each node's tag without building lists per node.

    The same answers as yaml's Resolver.resolve, which libyaml's parser calls for every node
    (half of its time in a tenant file); the safe loader has no path resolvers, so the first
    matching implicit resolver or the default tag decides.
    """

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str | None:
        if self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        if kind is ScalarNode and implicit[0]:
            return _plain_tag(value)
        return _DEFAULT_TAGS.get(kind)


def _plain_tag(value: str) -> str:
    """The tag of a plain scalar written without one."""
    for tag, regexp in _IMPLICIT.get(value[:1], _WILDCARD):
        if regexp.match(value):
            return tag
    return _Base.DEFAULT_SCALAR_TAG


def _walk(node: Node, location: tuple[str | int, ...], lines: dict, depth: int, seen: set[int],
          tagged: str | None) -> Any:
    """`tagged`: the document's text when it has a `!`, so that a tag may be written in it."""
    # An alias makes two places share one node: refuse it before it can be expanded (YAML bombs).
    # Scalars too: 400 KB named once and repeated 137,000 times is 55 GB once every error message
    # about it quotes it.
    if id(node) in seen:
        raise SourceError("YAML aliases (*name) are not allowed in tenant files: write the value out",
                          node.start_mark.line + 1)
    seen.add(id(node))
    if depth > MAX_DEPTH:
        raise SourceError(f"nesting deeper than {MAX_DEPTH} levels", node.start_mark.line + 1)
    _check_tag(node, tagged)
    lines[location] = node.start_mark.line + 1
    if isinstance(node, MappingNode):
        out = {}
        for key_node, value_node in node.value:
            _check_tag(key_node, tagged)
            if isinstance(key_node, ScalarNode) and not key_node.style and (kind := go_reads(key_node.value)) != _TEXT:
                what = kind if kind == _YAML11_BOOLEAN else f"read as {kind} by kubectl (YAML 1.1 in Go)"
                raise SourceError(f"the unquoted key {quoted(key_node.value)} is {what}: put it in quotes",
                                  key_node.start_mark.line + 1)
            key = key_node.value if isinstance(key_node, ScalarNode) else str(key_node.value)
            if key in out:  # kept silently, the last would win here; kubectl and kustomize refuse the file
                two = " (two objects in one file need a line --- between them)" if key in ("apiVersion", "kind") else ""
                raise SourceError(f"the key {quoted(key)} appears twice in one mapping: keep one{two}",
                                  key_node.start_mark.line + 1)
            out[key] = _walk(value_node, (*location, key), lines, depth + 1, seen, tagged)
        return out
    if isinstance(node, SequenceNode):
        return [_walk(item, (*location, i), lines, depth + 1, seen, tagged) for i, item in enumerate(node.value)]
    if not node.style and node.tag != _TIMESTAMP:  # plain: None, or "" from libyaml (timestamps: text below)
        here, there = _KINDS[node.tag], go_reads(node.value)
        if there == _YAML11_BOOLEAN:
            raise SourceError(f"the unquoted value {quoted(node.value)} is {there}: write true or false, or put it "
                              "in quotes", node.start_mark.line + 1, location)
        if here != there:
            raise SourceError(f"the unquoted value {quoted(node.value)} is read as {there} by kubectl (YAML 1.1 in "
                              f"Go) and as {here} by tenantry: put it in quotes", node.start_mark.line + 1, location)
        if _THOUSANDS.fullmatch(node.value):  # 1.000 seats is one seat, to kubectl as here
            number = f"{float(node.value):g}"
            raise SourceError(f"the unquoted value {node.value} is the number {number}: in YAML a dot is the decimal "
                              f"point, never a thousands separator; write {node.value.replace('.', '')} or {number}",
                              node.start_mark.line + 1, location)
    # A string as SafeLoader's constructor returns it, without its per-node cache; a timestamp stays
    # its text, as go-yaml gives it (kubectl sends expectedClose: 2027-01-20 as "2027-01-20").
    if node.tag in (_STR, _TIMESTAMP):
        return node.value
    try:
        return yaml.SafeLoader.construct_object(_CONSTRUCTOR, node)  # type: ignore[arg-type]
    except ValueError as error:  # (a safety net: what Go reads alike converts here)
        raise SourceError(f"value at {'.'.join(map(str, location)) or 'the top'} cannot be read: {error}",
                          node.start_mark.line + 1) from error


_CONSTRUCTOR = yaml.SafeLoader("")
# What JSON (and so a Kubernetes object) can hold, plus timestamps (which come out as strings).
_PLAIN_TAGS = {f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null", "map", "seq",
                                                         "timestamp")}
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_NULL = "tag:yaml.org,2002:null"


def _check_tag(node: Node, tagged: str | None) -> None:
    if node.tag not in _PLAIN_TAGS:
        # Language-specific tags (!!python/object, ...) are how YAML runs code in other loaders.
        raise SourceError(f"YAML tag {node.tag!r} is not allowed in tenant files: use plain values",
                          node.start_mark.line + 1)
    if tagged is not None and _written_tag(tagged, node.start_mark.index):
        # Go's YAML and this one read written tags differently: `!!seq x` is "x" to kubectl and []
        # here, `! 85` is "85" there and 85 here. Tenant files need none.
        raise SourceError("a written YAML tag (!, !!str, ...) is not allowed in tenant files: remove it, and put "
                          "text in quotes", node.start_mark.line + 1)


def _written_tag(text: str, index: int) -> bool:
    """Whether the node starting at `index` has a tag written before it (among its anchor and tag,
    in either order; a plain scalar cannot start with `!`)."""
    while index < len(text) and text[index] in "&!":
        if text[index] == "!":
            return True
        while index < len(text) and not text[index].isspace():
            index += 1
        while index < len(text) and text[index].isspace():
            index += 1
    return False


# What Go's YAML reads a plain scalar as (kubectl: YAML 1.1 as go-yaml v2 resolves it), next to
# PyYAML's reading; a difference is refused. They differ on 1e3, -.5, 0o17 and 08 (numbers there),
# 1e400 (text there) and sexagesimal 1:30 (text there, 90 here). y, yes, on, n, no and off are
# booleans to kubectl and text to Flux and kustomize (go-yaml v3, YAML 1.2): refused whatever
# PyYAML reads; only true and false are booleans to all three.
_TEXT, _NUMBER, _BOOLEAN = "text", "a number", "a boolean"
_YAML11_BOOLEAN = "a boolean to kubectl (YAML 1.1) and text to Flux and kustomize (YAML 1.2)"
_KINDS = {f"tag:yaml.org,2002:{tag}": kind for tag, kind in (
    ("str", _TEXT), ("int", _NUMBER), ("float", _NUMBER), ("bool", _BOOLEAN), ("null", "null"))}
_GO_WORDS = {
    **dict.fromkeys("y Y yes Yes YES on On ON n N no No NO off Off OFF".split(), _YAML11_BOOLEAN),
    **dict.fromkeys("true True TRUE false False FALSE".split(), _BOOLEAN),
    **dict.fromkeys(["", "~", "null", "Null", "NULL"], "null"),
    **dict.fromkeys([f"{sign}.{word}" for sign in ("", "+", "-") for word in ("inf", "Inf", "INF")]
                    + [".nan", ".NaN", ".NAN"], _NUMBER),
}
# strconv.ParseInt(s, 0, 64), then ParseUint (no sign): a prefix, or a leading 0 for octal.
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")  # go-yaml's yamlStyleFloat
# What strconv.ParseFloat takes of a scalar starting with a dot (underscores between digits).
_GO_DOT_FLOAT = re.compile(r"\.[0-9](_?[0-9])*([eE][-+]?[0-9](_?[0-9])*)?")
_PREFIXES = {"0x": 16, "0o": 8, "0b": 2}
# A number with three digits after its one dot, as German and other languages write thousands.
_THOUSANDS = re.compile(r"[-+]?[1-9][0-9]{0,2}\.[0-9]{3}")  # (0.500 is no thousand: left alone)


def _go_int(digits: str) -> bool:
    """Whether ParseInt or ParseUint takes it: the form, and the range (beyond it, text)."""
    found = _GO_INT.fullmatch(digits)
    if found is None:
        return False
    sign, body = found.groups()
    base = _PREFIXES.get(body[:2].lower())
    digits = (body[2:] if base else body).lstrip("0") or "0"
    if len(digits) > 64:  # beyond 64 bits in any base (and no int() of thousands of digits)
        return False
    value = int(digits, base or (8 if body[:1] == "0" else 10))
    return value <= 2**63 if sign == "-" else value < (2**63 if sign == "+" else 2**64)


def _go_float(text: str) -> bool:
    return math.isfinite(float(text.replace("_", "")))  # beyond the float range, ParseFloat fails: text


def go_reads(plain: str) -> str:
    """What go-yaml v2 (resolve.go) reads a plain scalar as: a boolean, null, a number or text. (Its
    timestamps are left to PyYAML's reading, as they come out as strings either way.)"""
    if plain in _GO_WORDS:
        return _GO_WORDS[plain]
    if plain[:1] == ".":
        return _NUMBER if _GO_DOT_FLOAT.fullmatch(plain) and _go_float(plain) else _TEXT
    if plain[:1] in "+-0123456789":
        digits = plain.replace("_", "")  # go-yaml drops them before it parses
        # (A leading 0 is octal to ParseInt; 08 fails there and is read as a float.)
        return _NUMBER if _go_int(digits) or (_GO_FLOAT.fullmatch(digits) and _go_float(digits)) else _TEXT
    return _TEXT


class _Dumper(yaml.SafeDumper):
    """The safe dumper, quoting every string that Go's YAML would read as another type (an
    unquoted 0521987654 is a number to kubectl), so that what tenantry writes it also accepts."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if go_reads(value) != _TEXT:
        return dumper.represent_scalar(_STR, value, style='"')
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_text)


def dump(documents: list[Any]) -> str:
    """YAML documents (separated by ---) that kubectl, Flux and `tenantry validate` read alike."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def read_bounded(path: Path) -> bytes:
    """The bytes of a regular file, never following a symlink and never reading more than the limit.

    O_NOFOLLOW refuses a symlink as the last part of the path (the caller resolves the links it
    allows first); O_NONBLOCK keeps opening a FIFO from waiting for a writer; fstat on the opened
    descriptor (not a stat of the name, which could be swapped in between) refuses every kind of
    file but a regular one; and the read stops after MAX_FILE_BYTES + 1 bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if os.path.islink(path):
            raise SourceError("a symlink: tenant files must be regular files inside the repository "
                              "(replace the link with the file)") from error
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise SourceError("not a regular file (a device, FIFO, socket or folder): tenant files must be "
                              "regular YAML files")
        data = _read_to_end(fd, MAX_FILE_BYTES + 1, max(status.st_size + 1, 4096))
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise SourceError(f"the file is larger than {MAX_FILE_BYTES} bytes, the most that is read "
                          "(one object per file)")
    return data


def _read_to_end(fd: int, limit: int, step: int) -> bytes:
    """The bytes up to the end of the file, but no more than `limit`.

    Read `step` bytes at a time: asking for the whole limit would allocate a megabyte per file.
    """
    parts: list[bytes] = []
    total = 0
    while total < limit:
        chunk = os.read(fd, min(step, limit - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def load(path: Path, real: Path | None = None) -> list[Document]:
    """Every document of a YAML file; SourceError for anything that is not plain YAML data.

    `real` is where to read it from when `path` is a symlink the caller has resolved and allowed
    (findings still name `path`).
    """
    data = read_bounded(real or path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceError(f"not UTF-8 text ({error.reason})") from error
    loader = _Loader(text)
    tagged = text if "!" in text else None  # (a tag is written with a "!")
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL and not node.value):
                continue  # an empty document (a --- at the end): kubectl and kustomize skip it too
            lines: dict[tuple[str | int, ...], int] = {}
            documents.append(Document(path, len(documents), _walk(node, (), lines, 0, set(), tagged), lines))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # YAML's line breaks only
        line = lines[mark.line] if mark and mark.line < len(lines) else ""
        tab = " (the line is indented with a tab: YAML indents with spaces only)" \
            if "\t" in line[:len(line) - len(line.lstrip())] else ""
        raise SourceError(f"not valid YAML: {error.problem or error}{tab}", (mark.line + 1) if mark else 1) from error
    except yaml.reader.ReaderError as error:  # a character YAML does not allow (a control character)
        line = text.count("\n", 0, max(error.position, 0)) + 1
        raise SourceError(f"contains the character U+{error.character:04X}, which YAML does not allow in a file: "
                          "remove it", line) from error
    finally:
        loader.dispose()
    return documents
