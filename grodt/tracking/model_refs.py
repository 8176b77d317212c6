"""Registry references of node components, resolved for :mod:`node_configs.model_refs`.

``node_configs.model_refs`` names this module by its import path (the event path never imports
the tracking layer): it calls :func:`pin_reference` when a node config is loaded and
:func:`model_file` when a component starts.
"""

import logging

from grodt.tracking.native import native_dir_of
from grodt.tracking.native import read_meta
from grodt.tracking.registry import load_model
from grodt.tracking.registry import model_cache_root
from grodt.tracking.registry import parse_model_ref
from node_configs.model_refs import ModelFile

__all__ = ["model_file", "pin_reference"]

logger = logging.getLogger("grodt.tracking")


def pin_reference(ref: str) -> str:
    """``name@alias`` → ``name/<version>`` it points at now (downloaded into the model cache).

    With the tracking store unreachable, the version the alias last resolved to on this machine
    (a warning names it); :class:`~grodt.core.errors.GrodtError` when there is none.
    """
    return load_model(ref).tag


def model_file(ref: str) -> ModelFile:
    """The native model file of a registry reference.

    A ``name/<version>`` already in the cache is read from there without contacting the store
    (registered versions are immutable); anything else goes through
    :func:`~grodt.tracking.registry.load_model` (download once, offline fallback).
    """
    parsed = parse_model_ref(ref)
    if parsed.version is not None:
        cached = model_cache_root(None) / parsed.name / parsed.version
        if (cached / "MLmodel").is_file():
            native = native_dir_of(cached)
            return ModelFile(
                path=native / read_meta(native).filename,
                reference=f"{parsed.name}/{parsed.version}",
            )
    loaded = load_model(ref)
    native = native_dir_of(loaded.path)
    return ModelFile(path=native / loaded.meta.filename, reference=loaded.tag)
