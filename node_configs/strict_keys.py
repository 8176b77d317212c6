"""Unknown keys in a component's ``config:`` mapping are errors, with a suggestion.

Nautilus config classes are msgspec Structs, and msgspec ignores keys it does not know (so do the
frozen dataclasses nested in them, such as the regime actor's ``walk_forward``): a misspelt
``perod: 23`` would silently run with the default. :func:`unknown_keys` walks a config mapping
against the class's msgspec type information, nested Structs, dataclasses and TypedDicts
included, and reports every key the class does not declare::

    strategies[0].config.perod: unknown field; did you mean 'period'?
"""

import difflib
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec.inspect as mi

__all__ = ["UnknownKey", "unknown_keys"]

_RECORD_TYPES = (mi.StructType, mi.DataclassType, mi.TypedDictType)
_SEQUENCE_TYPES = (mi.ListType, mi.TupleType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)


@dataclass(frozen=True)
class UnknownKey:
    """One key the config class does not declare.

    Attributes
    ----------
    path : str
        Where it sits below the component's ``config`` (``".walk_forward.n_state"``).
    key : str
        The key as written (shown bounded by the caller).
    known : tuple[str, ...]
        The field names declared at that place, for a suggestion.
    """

    path: str
    key: str
    known: tuple[str, ...]

    def suggestion(self) -> str | None:
        """The closest declared field name (difflib), if any is close enough."""
        matches = difflib.get_close_matches(self.key, self.known, n=1, cutoff=0.6)
        return matches[0] if matches else None


def unknown_keys(config: Mapping[str, Any], config_cls: type) -> Iterator[UnknownKey]:
    """Yield every key of ``config`` (recursively) that ``config_cls`` does not declare.

    A generator, so a caller can stop after the first few keys of a huge mapping.
    """
    yield from _walk(config, mi.type_info(config_cls), "")


def _walk(value: Any, info: mi.Type, path: str) -> Iterator[UnknownKey]:
    if isinstance(info, mi.Metadata):
        yield from _walk(value, info.type, path)
    elif isinstance(info, _RECORD_TYPES):
        if not isinstance(value, Mapping):
            return
        fields = {field.encode_name: field for field in info.fields}
        for key, child in value.items():
            field = fields.get(key) if isinstance(key, str) else None
            if field is None:
                yield UnknownKey(path=f"{path}.{key}", key=str(key), known=tuple(fields))
            else:
                yield from _walk(child, field.type, f"{path}.{key}")
    elif isinstance(info, mi.UnionType):
        # `WalkForwardConfig | None`: a mapping is checked against the union's one record type;
        # with several record types the decoder's own error is the better message.
        records = [member for member in info.types if isinstance(member, _RECORD_TYPES)]
        if isinstance(value, Mapping) and len(records) == 1:
            yield from _walk(value, records[0], path)
        elif isinstance(value, list | tuple):
            sequences = [member for member in info.types if isinstance(member, _SEQUENCE_TYPES)]
            if len(sequences) == 1:
                yield from _walk(value, sequences[0], path)
    elif isinstance(info, _SEQUENCE_TYPES) and isinstance(value, list | tuple):
        item_types = getattr(info, "item_types", None)
        for index, item in enumerate(value):
            if item_types is not None:  # fixed-length tuple
                if index < len(item_types):
                    yield from _walk(item, item_types[index], f"{path}[{index}]")
            else:
                yield from _walk(item, info.item_type, f"{path}[{index}]")
    elif isinstance(info, mi.DictType) and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, info.value_type, f"{path}.{key}")
