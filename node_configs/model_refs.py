"""Model references in component configs: a file path or a registry reference.

A component that uses a trained model takes a string field (the regime actor's ``model`` and
``shadow_model``)::

    model: regime_hmm@champion          # registry: the version the alias points at
    model: regime_hmm/7                 # registry: exactly version 7
    model: runs/regime/models/SPX.SAMPLE/hmm-3f2a1b2c3d4e.json    # a model file

A string is a registry reference when it has the shape ``name@alias`` or ``name/<digits>``
and no file of that name exists; anything else is a file path.

Registry references are resolved by the tracking layer (above this one), named here by an
import-path string like the node extensions' factories, so the event path never imports it:

- :func:`pin_model_references` runs when a node config is loaded: every ``name@alias`` in a
  component's ``model`` field is replaced by the ``name/<version>`` it resolves to now. The
  run records, and every node built from that document runs, that exact version (a backtest and
  its paper-node twin in ``grodt parity`` load the same one; an alias moved mid-run changes
  nothing).
- :func:`resolve_model_file` runs when a component starts: a reference becomes the local file
  of that version (downloaded once into the model cache; an unreachable registry falls back to
  the cached copy, with a warning).
"""

import importlib
import re
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MODEL_FIELDS",
    "MODEL_RESOLVER",
    "ModelFile",
    "is_registry_reference",
    "pin_model_references",
    "resolve_model_file",
]

MODEL_FIELDS = ("model", "shadow_model")
"""Component config fields that hold a model reference."""

MODEL_RESOLVER = "grodt.tracking.model_refs"
"""Module implementing ``pin_reference(ref) -> str`` and ``model_file(ref) -> ModelFile``."""

_REGISTRY_REF = re.compile(r"^(?:models:/)?[A-Za-z0-9][\w.\-]*(?:@[\w\-]+|/\d+)$")


@dataclass(frozen=True)
class ModelFile:
    """A model reference made local.

    Attributes
    ----------
    path : Path
        The model file in its own format (e.g. the regime HMM's JSON).
    reference : str | None
        ``name/<version>`` of a registry model (what records cite), ``None`` for a plain file.
    """

    path: Path
    reference: str | None = None


def is_registry_reference(text: str) -> bool:
    """``name@alias`` / ``name/<version>`` (optionally ``models:/``-prefixed) that is not an
    existing file."""
    text = str(text).strip()
    return bool(_REGISTRY_REF.match(text)) and not Path(text).exists()


def _resolver(attribute: str) -> Callable[[str], Any]:
    return getattr(importlib.import_module(MODEL_RESOLVER), attribute)


def resolve_model_file(text: str) -> ModelFile:
    """The local file behind ``text`` (a path, or a registry reference; see the module
    docstring). Raises :class:`~grodt.core.errors.GrodtError` naming the reference when the
    registry does not have it and no cached copy stands in."""
    if not is_registry_reference(text):
        return ModelFile(path=Path(text))
    return _resolver("model_file")(str(text).strip())


def pin_model_references(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a node config document whose components' ``name@alias`` model references are
    replaced by the ``name/<version>`` they resolve to now (versions and paths are kept).

    Only the :data:`MODEL_FIELDS` of ``actors[*].config`` and ``strategies[*].config`` are
    looked at; a document without registry aliases is returned unchanged (no registry is
    contacted).
    """
    pinned = dict(document)
    for kind in ("actors", "strategies"):
        components = document.get(kind)
        if not isinstance(components, list):
            continue
        updated = []
        for component in components:
            config = component.get("config") if isinstance(component, Mapping) else None
            if isinstance(config, Mapping):
                pins = {
                    field: _resolver("pin_reference")(value.strip())
                    for field in MODEL_FIELDS
                    if isinstance(value := config.get(field), str)
                    and "@" in value
                    and is_registry_reference(value)
                }
                if pins:
                    component = {**component, "config": {**config, **pins}}
            updated.append(component)
        pinned[kind] = updated
    return pinned
