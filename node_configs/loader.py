"""Load YAML node configs: resolve includes, validate with pydantic, check component configs.

Includes let a backtest and a live node share one definition of each strategy and actor::

    strategies:
      - include: ../components/strategies/ema_cross_spx.yaml
        config: {fast_ema_period: 10}        # optional overrides, deep-merged

An ``include`` path is relative to the file that contains it. Errors name the file and the field
path (``strategies[0].config.fast_ema_period``).
"""

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import TypeVar

import msgspec
import yaml
from pydantic import BaseModel
from pydantic import ValidationError

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from node_configs.extensions import node_extensions
from node_configs.schema import BacktestNodeSpec
from node_configs.schema import ComponentSpec
from node_configs.schema import NodeSpec
from node_configs.secrets import reject_literal_secrets

ModelT = TypeVar("ModelT", bound=BaseModel)

INCLUDE_KEY = "include"
_MAX_INCLUDE_DEPTH = 16


def format_location(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """Render a pydantic/msgspec location as ``a.b[0].c``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "<root>"


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None


def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` into ``base``: mappings merge key by key, anything else replaces."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override


def resolve_includes(node: Any, base_dir: Path, depth: int = 0) -> Any:
    """Replace every mapping with an ``include`` key by the included document merged with the
    mapping's other keys, recursively."""
    if depth > _MAX_INCLUDE_DEPTH:
        raise ConfigError(
            f"{base_dir}: includes nested deeper than {_MAX_INCLUDE_DEPTH} (a cycle?)"
        )
    if isinstance(node, list):
        return [resolve_includes(item, base_dir, depth) for item in node]
    if not isinstance(node, Mapping):
        return node
    if INCLUDE_KEY in node:
        include_path = (base_dir / str(node[INCLUDE_KEY])).resolve()
        included = resolve_includes(_read_yaml(include_path), include_path.parent, depth + 1)
        if not isinstance(included, Mapping):
            raise ConfigError(f"{include_path}: an included file must hold a mapping")
        overrides = {k: v for k, v in node.items() if k != INCLUDE_KEY}
        return deep_merge(included, resolve_includes(overrides, base_dir, depth))
    return {key: resolve_includes(value, base_dir, depth) for key, value in node.items()}


def load_yaml_document(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file with its includes resolved."""
    path = Path(path)
    document = resolve_includes(_read_yaml(path), path.resolve().parent)
    if not isinstance(document, Mapping):
        raise ConfigError(f"{path}: a node config must be a mapping at the top level")
    return dict(document)


def validate_model(model: type[ModelT], document: Mapping[str, Any], source: str) -> ModelT:
    """Validate ``document`` against ``model``; errors list every bad field path. A literal
    secret is rejected first, so no message ever echoes one (:mod:`node_configs.secrets`)."""
    reject_literal_secrets(document, source)
    try:
        return model.model_validate(document)
    except ValidationError as e:
        lines = [
            f"  {format_location(err['loc'])}: {err['msg']}"
            + (f" (got {err['input']!r})" if err["type"] != "missing" else "")
            for err in e.errors()
        ]
        raise ConfigError(f"{source}: invalid config\n" + "\n".join(lines)) from None


def import_object(path: str) -> Any:
    """Import ``"package.module:Name"``."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def check_component(component: ComponentSpec, location: str, source: str) -> None:
    """Import a component and parse its config with the component's own (msgspec) config class,
    so type errors surface at load time with their field path, not half-way into a run."""
    for field_name, target in (
        ("path", component.path),
        ("config_path", component.resolved_config_path),
    ):
        try:
            import_object(target)
        except (ImportError, AttributeError) as e:
            raise ConfigError(
                f"{source}: {location}.{field_name}: cannot import {target!r}: {e}",
            ) from None
    config_cls = import_object(component.resolved_config_path)
    try:
        config_cls.parse(msgspec.json.encode(component.config))
    except msgspec.ValidationError as e:
        # msgspec says "... - at `$.field`"; turn that into our field path.
        message, _, at = str(e).partition(" - at `$")
        field = at.rstrip("`")
        raise ConfigError(f"{source}: {location}.config{field}: {message}") from None
    except (TypeError, ValueError, GrodtError) as e:
        # GrodtError: a nested config's own validation (e.g. the regime actor's walk_forward).
        raise ConfigError(f"{source}: {location}.config: {e}") from None


def check_components(spec: NodeSpec, source: str) -> None:
    for kind in ("actors", "strategies"):
        for index, component in enumerate(getattr(spec, kind)):
            check_component(component, f"{kind}[{index}]", source)


def check_sections(spec: NodeSpec, source: str) -> None:
    """Validate the optional framework sections (risk, forensics) with their features' own
    configs: extension factories validate and raise ConfigError naming the field, and open no
    resources until installed."""
    try:
        node_extensions(spec, run_dir=None)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def load_backtest_config(path: str | Path) -> BacktestNodeSpec:
    """Load, validate and check a backtest node config file."""
    source = str(path)
    spec = validate_model(BacktestNodeSpec, load_yaml_document(path), source)
    check_components(spec, source)
    check_sections(spec, source)
    return spec
