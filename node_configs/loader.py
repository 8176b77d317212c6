"""Load YAML node configs: resolve includes, validate with pydantic, check component configs.

Includes let a backtest and a live node share one definition of each strategy and actor::

    strategies:
      - include: ../components/strategies/ema_cross_spx.yaml
        config: {fast_ema_period: 10}        # optional overrides, deep-merged

An ``include`` path is relative to the file that contains it; one that is not found names the
including file, the field and the path looked at. Errors name the file and the field path
(``strategies[0].config.fast_ema_period``).

Loading a config checks, before anything runs:

- the YAML within bounds (:mod:`node_configs.bounded_yaml`: size, alias expansion);
- every field of the node models (pydantic; the offending value is echoed bounded);
- every component's ``config`` against its own config class: unknown keys anywhere in it, with a
  suggestion (:mod:`node_configs.strict_keys`), then types and invariants;
- at least one strategy, and (backtests) that the data provides every instrument and external
  bar type a strategy names;
- the ``risk``/``forensics`` sections with their features' own models.

:func:`load_document` applies ``PATH=VALUE`` overrides (:mod:`node_configs.overrides`) to the
resolved document and pins registry aliases of component models to versions
(:mod:`node_configs.model_refs`); the run validates, records and runs that document.
"""

import importlib
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any
from typing import TypeVar

import msgspec
from nautilus_trader.model.data import BarType
from pydantic import BaseModel
from pydantic import ValidationError

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from node_configs.bounded_yaml import echo
from node_configs.bounded_yaml import read_yaml
from node_configs.extensions import node_extensions
from node_configs.model_refs import pin_model_references
from node_configs.overrides import apply_overrides
from node_configs.schema import BacktestNodeSpec
from node_configs.schema import ComponentSpec
from node_configs.schema import DataSpec
from node_configs.schema import NodeSpec
from node_configs.secrets import reject_literal_secrets
from node_configs.strict_keys import unknown_keys

__all__ = [
    "check_component",
    "check_components",
    "check_instruments_provided",
    "check_sections",
    "deep_merge",
    "format_location",
    "import_object",
    "load_backtest_config",
    "load_backtest_document",
    "load_document",
    "load_yaml_document",
    "resolve_includes",
    "validate_model",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

INCLUDE_KEY = "include"
_MAX_INCLUDE_DEPTH = 16
_MAX_REPORTED_KEYS = 10
"""Unknown keys listed in one error (the rest are counted): a config with thousands of junk keys
fails with a short message."""
_BAR_DATA_CLS = "nautilus_trader.model.data:Bar"


def format_location(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """Render a pydantic/msgspec location as ``a.b[0].c``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "<root>"


def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` into ``base``: mappings merge key by key, anything else replaces."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override


def resolve_includes(
    node: Any,
    base_dir: Path,
    depth: int = 0,
    source: Path | None = None,
    location: str = "",
) -> Any:
    """Replace every mapping with an ``include`` key by the included document merged with the
    mapping's other keys, recursively.

    ``source`` is the file holding ``node`` and ``location`` the field path of ``node`` in it;
    both only serve messages (an include that is not found names the file that included it,
    the field and the path it looked at).
    """
    if depth > _MAX_INCLUDE_DEPTH:
        raise ConfigError(
            f"{source or base_dir}: includes nested deeper than {_MAX_INCLUDE_DEPTH} (a cycle?)"
        )
    if isinstance(node, list):
        return [
            resolve_includes(item, base_dir, depth, source, f"{location}[{index}]")
            for index, item in enumerate(node)
        ]
    if not isinstance(node, Mapping):
        return node
    here = f"{location}." if location else ""
    if INCLUDE_KEY in node:
        raw = node[INCLUDE_KEY]
        include_path = (base_dir / str(raw)).resolve()
        if not include_path.is_file():
            where = f"{source}: {here}{INCLUDE_KEY}" if source else f"{here}{INCLUDE_KEY}"
            raise ConfigError(
                f"{where}: {include_path}: file not found (the include {echo(raw)} is "
                f"relative to {base_dir}, the directory of the including file)",
            )
        included = resolve_includes(
            read_yaml(include_path), include_path.parent, depth + 1, include_path
        )
        if not isinstance(included, Mapping):
            raise ConfigError(f"{include_path}: an included file must hold a mapping")
        overrides = {k: v for k, v in node.items() if k != INCLUDE_KEY}
        return deep_merge(included, resolve_includes(overrides, base_dir, depth, source, location))
    return {
        key: resolve_includes(value, base_dir, depth, source, f"{here}{key}")
        for key, value in node.items()
    }


def load_yaml_document(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file with its includes resolved."""
    path = Path(path)
    document = resolve_includes(read_yaml(path), path.resolve().parent, source=path)
    if not isinstance(document, Mapping):
        raise ConfigError(f"{path}: a node config must be a mapping at the top level")
    return dict(document)


def load_document(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The resolved document of a config file with ``PATH=VALUE`` overrides applied (see
    :mod:`node_configs.overrides`): what a run validates, records and runs."""
    return pin_model_references(apply_overrides(load_yaml_document(path), overrides))


def validate_model(model: type[ModelT], document: Mapping[str, Any], source: str) -> ModelT:
    """Validate ``document`` against ``model``; errors list every bad field path (the offending
    value is echoed bounded, so a huge input cannot flood the message). A literal secret is
    rejected first, so no message ever echoes one (:mod:`node_configs.secrets`)."""
    reject_literal_secrets(document, source)
    try:
        return model.model_validate(document)
    except ValidationError as e:
        lines = []
        for err in islice(e.errors(include_url=False), _MAX_REPORTED_KEYS * 2):
            message = err["msg"].removeprefix("Value error, ")
            location = format_location(err["loc"])
            shown = message if location == "<root>" else f"{location}: {message}"
            if err["type"] not in ("missing", "value_error"):
                shown += f" (got {echo(err['input'])})"
            lines.append(f"  {shown}")
        if e.error_count() > len(lines):
            lines.append(f"  … and {e.error_count() - len(lines):,} more")
        raise ConfigError(f"{source}: invalid config\n" + "\n".join(lines)) from None


def import_object(path: str) -> Any:
    """Import ``"package.module:Name"``."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def _unknown_keys_message(config: Mapping[str, Any], config_cls: type, location: str) -> str:
    found = unknown_keys(config, config_cls)
    shown = list(islice(found, _MAX_REPORTED_KEYS))
    if not shown:
        return ""
    lines = []
    for unknown in shown:
        suggestion = unknown.suggestion()
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        lines.append(f"{location}.config{echo(unknown.path)[1:-1]}: unknown field{hint}")
    rest = sum(1 for _ in found)
    if rest:
        lines.append(f"… and {rest:,} more unknown fields")
    return "\n  ".join(lines)


def check_component(component: ComponentSpec, location: str, source: str) -> None:
    """Import a component and check its config against the component's own (msgspec) config
    class: unknown keys anywhere in it (nested records included) and type errors surface at load
    time with their field path, not half-way into a run."""
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
    unknown = _unknown_keys_message(component.config, config_cls, location)
    if unknown:
        raise ConfigError(f"{source}: {unknown}")
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
    """Check every actor and strategy (see :func:`check_component`); a node without a strategy
    is an error (it would run and report nothing)."""
    if not spec.strategies:
        raise ConfigError(
            f"{source}: strategies: a node needs at least one strategy (nothing would trade)",
        )
    for kind in ("actors", "strategies"):
        for index, component in enumerate(getattr(spec, kind)):
            check_component(component, f"{kind}[{index}]", source)


def _provided(data: Iterable[DataSpec]) -> tuple[set[str], set[str]]:
    """Bar types and instrument ids that bar entries of ``data`` provide."""
    bar_types: set[str] = set()
    instruments: set[str] = set()
    for entry in data:
        if entry.data_cls != _BAR_DATA_CLS:
            continue
        for text in entry.bar_types or []:
            bar_types.add(text)
            instruments.add(str(BarType.from_str(text).instrument_id))
        instruments.update(entry.instrument_ids or [])
    return bar_types, instruments


def check_instruments_provided(
    strategies: Sequence[ComponentSpec],
    data: Sequence[DataSpec],
    source: str,
    data_field: str = "data",
) -> None:
    """Every instrument (``instrument_id``) and external bar type (``bar_type``) a strategy's
    config names must come from a bar entry of ``data``: otherwise the strategy would never see
    a bar and the run would "succeed" with nothing traded.

    ``data_field`` is where the entries sit in the config (``data_clients[0].data`` for a replay
    client), for the message.
    """
    bar_types, instruments = _provided(data)
    for index, strategy in enumerate(strategies):
        config = strategy.config
        named_bar_type = config.get("bar_type")
        if isinstance(named_bar_type, str):
            try:
                bar_type = BarType.from_str(named_bar_type)
            except ValueError:
                continue  # check_component reports a malformed bar type
            if bar_type.is_externally_aggregated() and named_bar_type not in bar_types:
                raise ConfigError(
                    f"{source}: strategies[{index}].config.bar_type: {echo(named_bar_type)} is "
                    f"not read by any `{data_field}` entry (bar types: {sorted(bar_types)})",
                )
        instrument = config.get("instrument_id")
        if isinstance(instrument, str) and instrument not in instruments:
            raise ConfigError(
                f"{source}: strategies[{index}].config.instrument_id: {echo(instrument)} is not "
                f"provided by any `{data_field}` entry (instruments: {sorted(instruments)})",
            )


def check_sections(spec: NodeSpec, source: str) -> None:
    """Validate the optional framework sections (risk, forensics) with their features' own
    configs: extension factories validate and raise ConfigError naming the field, and open no
    resources until installed."""
    try:
        node_extensions(spec, run_dir=None)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def load_backtest_document(document: Mapping[str, Any], source: str) -> BacktestNodeSpec:
    """Validate and check a resolved backtest document (``source`` names it in errors)."""
    spec = validate_model(BacktestNodeSpec, document, source)
    check_components(spec, source)
    check_instruments_provided(spec.strategies, spec.data, source)
    check_sections(spec, source)
    return spec


def load_backtest_config(path: str | Path, overrides: Sequence[str] = ()) -> BacktestNodeSpec:
    """Load, validate and check a backtest node config file, with optional ``PATH=VALUE``
    overrides."""
    return load_backtest_document(load_document(path, overrides), str(path))
