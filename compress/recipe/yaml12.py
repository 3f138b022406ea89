"""YAML for recipes: PyYAML's *safe* loader with the YAML 1.2 core schema's scalars.

PyYAML implements YAML 1.1, where ``1e-3`` is a string (a 1.1 float needs a dot), ``yes``/``off``
are booleans, ``010`` is octal and ``1:30`` is sexagesimal.  Recipes and command-line overrides are
read with the 1.2 core schema instead (what users of JSON, ruamel.yaml and most tools expect):

* null: ``~``, ``null``, ``Null``, ``NULL``, empty;  bool: ``true``/``false`` (and their capitalised
  forms) only;  int: decimal, ``0o`` octal, ``0x`` hex;  float: ``1e-3``, ``.5``, ``2.``, ``.inf``,
  ``-.inf``, ``.nan``;  everything else (``yes``, ``1:30``, ``2024-01-01``) is a string.

Only safe tags are constructed (no ``!!python/...``), and a mapping with a duplicate key is an error
(PyYAML would keep the last value silently).
"""
from __future__ import annotations

import math
import re

import yaml

__all__ = ["Yaml12Loader", "load_yaml", "parse_scalar"]

_NULL, _BOOL = "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"
_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_DROP = {_NULL, _BOOL, _INT, _FLOAT, "tag:yaml.org,2002:timestamp"}


class Yaml12Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 core-schema scalars and duplicate-key errors."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
            except TypeError:  # unhashable key: SafeConstructor reports it
                break
            if dup:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml12Loader.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Yaml12Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                   list("-+0123456789"))
Yaml12Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+.0123456789"))


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _construct_float(loader, node):
    text = loader.construct_scalar(node)
    low = text.lower()
    if low.endswith(".inf"):
        return -math.inf if low.startswith("-") else math.inf
    if low == ".nan":
        return math.nan
    return float(text)


def _construct_bool(loader, node):
    return loader.construct_scalar(node).lower() == "true"


Yaml12Loader.add_constructor(_INT, _construct_int)
Yaml12Loader.add_constructor(_FLOAT, _construct_float)
Yaml12Loader.add_constructor(_BOOL, _construct_bool)


def load_yaml(text: str):
    """Parse YAML text with the 1.2 core schema (raises ``yaml.YAMLError`` on bad input)."""
    return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - Yaml12Loader is a SafeLoader subclass


def parse_scalar(raw: str):
    """A command-line override value: YAML 1.2 (``1e-3`` -> 0.001, ``[64, 64]`` -> list); text that does
    not parse as YAML stays a string."""
    try:
        return load_yaml(raw)
    except yaml.YAMLError:
        return raw
