"""YAML read with bounds, and bounded echoes of input in error messages.

A config is a small file. Without bounds, a 400-byte "billion laughs" document (nested aliases)
expands to hundreds of millions of nodes when it is traversed or printed, costing minutes and
gigabytes. :func:`read_yaml` therefore refuses

- a file larger than :data:`MAX_DOCUMENT_BYTES`,
- a document whose alias-expanded size exceeds :data:`MAX_EXPANDED_NODES` nodes, or that refers
  to itself through an alias,

before anything is constructed: it composes the node graph (aliases stay shared there), counts
the expanded size with memoisation, and only then builds Python objects. :func:`echo` renders a
value for an error message in at most a few dozen characters, however large the value.
"""

import reprlib
from pathlib import Path
from typing import Any

import yaml

from grodt.core.errors import ConfigError

__all__ = ["MAX_DOCUMENT_BYTES", "MAX_EXPANDED_NODES", "echo", "parse_yaml", "read_yaml"]

MAX_DOCUMENT_BYTES = 1024 * 1024
"""Largest config file read, bytes. The project's largest config (sixty strategies) is 14 KiB;
parsing a megabyte of YAML already takes seconds, so anything larger is refused unread."""

MAX_EXPANDED_NODES = 1_000_000
"""Most YAML nodes (scalars, keys, lists, mappings) a document may hold once aliases are
expanded."""

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_ECHO = reprlib.Repr()
_ECHO.maxstring = 60
_ECHO.maxother = 60
_ECHO.maxlist = 4
_ECHO.maxtuple = 4
_ECHO.maxdict = 4
_ECHO.maxset = 4
_ECHO.maxlevel = 2


def echo(value: Any) -> str:
    """A bounded ``repr`` of ``value`` for error messages (≲ 100 characters, never the whole
    input)."""
    return _ECHO.repr(value)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file with the safe loader, within the bounds above.

    Raises
    ------
    ConfigError
        Naming ``path``: not found, unreadable, too large, alias expansion too large or
        recursive, or invalid YAML (with the parser's line and column).
    """
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise ConfigError(
                f"{path}: {size:,} bytes; a config file may hold at most "
                f"{MAX_DOCUMENT_BYTES:,} bytes",
            )
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str | bytes, source: str) -> Any:
    """Parse YAML text within the bounds above; errors start with ``source``."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ConfigError(f"{source}: more than {MAX_DOCUMENT_BYTES:,} bytes of YAML")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        # Without an anchor there is no alias: the graph is a tree no larger than the text.
        has_anchor = (b"&" if isinstance(text, bytes) else "&") in text
        try:
            expanded = _expanded_size(node) if has_anchor else 0
        except RecursionError:
            raise ConfigError(
                f"{source}: a YAML alias refers to a node that contains it",
            ) from None
        if expanded > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{source}: aliases expand the document to more than {MAX_EXPANDED_NODES:,} "
                "YAML nodes (an alias bomb?)",
            )
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {_bounded(str(e))}") from None
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node) -> int:
    """Node count of the document with every alias expanded, in time linear in the distinct
    nodes (aliased nodes are shared objects in the composed graph). Iterative: a deeply nested
    document cannot exhaust the Python stack. Raises RecursionError for an alias inside the
    node it names (an infinite document)."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            in_progress.discard(key)
            total = 1 + sum(sizes[id(child)] for child in children)
            sizes[key] = min(total, MAX_EXPANDED_NODES + 1)
            continue
        if key in in_progress:
            raise RecursionError
        in_progress.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in in_progress:
                raise RecursionError
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _bounded(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"
