"""The YAML loader of `tenantry validate` gives every node the tag yaml's own safe loader gives it.

Tested here: tenantry.cli.sources._Loader.resolve (the quick answer to libyaml's question of a
node's tag) against yaml's Resolver.resolve for every kind of implicit value (null, bool, int,
float, timestamp, merge, value, strings) and node kind.
"""

from __future__ import annotations

import pytest
import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from tenantry.cli.sources import _Loader

VALUES = ["", "~", "null", "Null", "NULL", "nul", "true", "True", "TRUE", "tRue", "yes", "Yes", "on", "Off", "no", "n",
          "y", "Y", "0", "-1", "+1", "0x1F", "0o17", "017", "0b101", "1_000", "1:30", "190:20:30", "1.5", ".5", "-.inf",
          ".NaN", ".nan", "1e3", "1.0e+3", "2024-01-02", "2024-01-02T03:04:05Z", "2024-1-2 3:04:05", "<<", "=", "!",
          "&", "*", "abc", "-", "+", ".", "Firma GmbH", "#000000", "max@firma.de", "0.0.0.0", "1.2.3", "08", "0x",
          "Ölmühle", "\u200b"]


@pytest.mark.parametrize("value", VALUES)
def test_scalar_tags_are_yamls(value: str) -> None:
    ours, theirs = _Loader(""), yaml.SafeLoader("")
    for implicit in ((True, False), (False, True), (False, False), (True, True)):
        assert ours.resolve(ScalarNode, value, implicit) == theirs.resolve(ScalarNode, value, implicit), implicit


def test_collection_tags_are_yamls() -> None:
    ours, theirs = _Loader(""), yaml.SafeLoader("")
    for kind in (SequenceNode, MappingNode):
        assert ours.resolve(kind, None, (True, False)) == theirs.resolve(kind, None, (True, False))


def test_documents_load_as_yaml_loads_them() -> None:
    text = "a: [1, 0x1F, 1.5, .inf, null, ~, yes, Off, 2024-01-02, '1', \"true\", text, 1:30]\n"
    assert yaml.load(text, Loader=_Loader) == yaml.safe_load(text)
