"""Change a config's values without writing a file: ``PATH=VALUE`` overrides.

``grodt backtest CONFIG --set strategies[0].config.period=23 --set start=2000-01-01`` applies
each override, in order, to the resolved document (includes merged) before it is validated, so an
override is typed by YAML parsing (``23`` is an int, ``2000-01-01`` a date, ``[1, 2]`` a list,
``null`` None) and checked exactly like the YAML it replaces: a misspelt key is an unknown field.
Research sweeps use :func:`apply_overrides` the same way.

``PATH`` is dotted keys with ``[N]`` list indices (``venues[0].fill_model.prob_slippage``).
A missing mapping key along the path is created; a list index must exist.
"""

import copy
import re
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from grodt.core.errors import ConfigError
from node_configs.bounded_yaml import echo
from node_configs.bounded_yaml import parse_yaml

__all__ = ["Override", "apply_overrides", "parse_override"]

_PART = re.compile(r"([^.\[\]=]+)|\[(\d+)\]")

Override = tuple[tuple[str | int, ...], Any]
"""A parsed override: the path (keys and list indices) and the YAML-typed value."""


def parse_override(text: str) -> Override:
    """Split ``PATH=VALUE`` into path parts and the value parsed as YAML.

    Raises
    ------
    ConfigError
        Naming the override: no ``=``, an empty or malformed path, or a value that is not YAML.
    """
    path_text, sep, value_text = text.partition("=")
    path_text = path_text.strip()
    if not sep or not path_text:
        raise ConfigError(f"--set {echo(text)}: expected PATH=VALUE (e.g. start=2000-01-01)")
    parts: list[str | int] = []
    position = 0
    for match in _PART.finditer(path_text):
        gap = path_text[position : match.start()]
        key, index = match.groups()
        # A key follows a "." (but the first); an index follows its list directly.
        expected = "" if index is not None or not parts else "."
        if gap != expected:
            break
        parts.append(int(index) if index is not None else key)
        position = match.end()
    if position != len(path_text) or not parts or isinstance(parts[0], int):
        raise ConfigError(
            f"--set {echo(text)}: malformed path {echo(path_text)} "
            "(dotted keys and [N] indices, e.g. strategies[0].config.period)",
        )
    value = parse_yaml(value_text, f"--set {path_text}") if value_text.strip() else None
    return tuple(parts), value


def _render(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _set(node: Any, parts: tuple[str | int, ...], value: Any, done: list[str | int]) -> Any:
    """A copy of ``node`` with ``value`` at ``parts`` (copies only along the path)."""
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    here = _render([*done, head])
    if isinstance(head, int):
        if not isinstance(node, list):
            raise ConfigError(f"--set {here}: {_render(done)} is not a list")
        if head >= len(node):
            raise ConfigError(
                f"--set {here}: {_render(done)} has {len(node)} entries (index from 0)",
            )
        updated = list(node)
        updated[head] = _set(node[head], rest, value, [*done, head])
        return updated
    if node is None:
        node = {}
    if not isinstance(node, Mapping):
        where = _render(done) or "the document"
        raise ConfigError(f"--set {here}: {where} is not a mapping")
    updated_map = dict(node)
    updated_map[head] = _set(node.get(head), rest, value, [*done, head])
    return updated_map


def apply_overrides(document: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``document`` with every ``PATH=VALUE`` override applied in order (a new document; the
    given one is not modified).

    Raises
    ------
    ConfigError
        Naming the override that cannot be parsed or applied.
    """
    result: dict[str, Any] = copy.copy(dict(document))
    for text in overrides:
        parts, value = parse_override(text)
        result = _set(result, parts, value, [])
    return result
