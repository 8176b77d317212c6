"""Sweep parameters: ``PATH=KIND:…`` specs parsed into Optuna distributions and overrides.

``grodt research sweep CONFIG --param strategies[0].config.fast_ema_period=int:5:30`` names a
config value (a :mod:`node_configs.overrides` path) and the range it is searched over:

- ``int:LOW:HIGH[:STEP]``: integers LOW..HIGH inclusive (STEP default 1);
- ``float:LOW:HIGH[:log|:STEP]``: reals in [LOW, HIGH], log-uniform with ``log``, on a grid of
  STEP with a number;
- ``choice:A,B,C``: one of the listed values, each parsed as YAML (``choice:true,false`` gives
  booleans, ``choice:0.5,1`` numbers, ``choice:close,next_open`` strings).

A trial's values become ``PATH=VALUE`` overrides applied to the resolved config document before
it is validated, exactly like ``grodt backtest --set``.
"""

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from grodt.core.errors import ConfigError
from node_configs.bounded_yaml import echo
from node_configs.bounded_yaml import parse_yaml
from node_configs.overrides import parse_override

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

__all__ = ["ParamSpec", "grid_search_space", "parse_param", "trial_overrides"]

_SYNTAX = "int:LOW:HIGH[:STEP], float:LOW:HIGH[:log|:STEP] or choice:A,B,C"


@dataclass(frozen=True)
class ParamSpec:
    """One searched config value.

    Attributes
    ----------
    path : str
        The config path (``strategies[0].config.fast_ema_period``); also the Optuna param name.
    kind : {"int", "float", "choice"}
    low, high : float | None
        Inclusive bounds (int and float).
    step : float | None
        Grid step (int: default 1; float: ``None`` is continuous).
    log : bool
        Log-uniform (float only).
    choices : tuple
        The values of a ``choice`` (YAML-typed).
    """

    path: str
    kind: Literal["int", "float", "choice"]
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def distribution(self) -> "BaseDistribution":
        """The Optuna distribution of this parameter."""
        from optuna.distributions import CategoricalDistribution
        from optuna.distributions import FloatDistribution
        from optuna.distributions import IntDistribution

        if self.kind == "int":
            return IntDistribution(
                int(self.low or 0), int(self.high or 0), step=int(self.step or 1)
            )
        if self.kind == "float":
            return FloatDistribution(
                float(self.low or 0.0), float(self.high or 0.0), log=self.log, step=self.step
            )
        return CategoricalDistribution(list(self.choices))

    def grid(self) -> list[Any]:
        """Every value of this parameter on a grid (the grid sampler's search space).

        Raises
        ------
        ConfigError
            For a continuous float (no STEP): a grid needs finitely many values.
        """
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low or 0), int(self.high or 0) + 1, int(self.step or 1)))
        if self.step is None:
            raise ConfigError(
                f"--param {self.path}=float:{self.low}:{self.high}: the grid sampler needs a "
                f"step (float:{self.low}:{self.high}:STEP) or use --sampler tpe",
            )
        count = math.floor((float(self.high or 0) - float(self.low or 0)) / self.step + 1e-9)
        return [round(float(self.low or 0) + i * self.step, 12) for i in range(count + 1)]


def _number(text: str, where: str, integer: bool) -> float:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"--param {where}: {echo(text)} is not {kind} ({_SYNTAX})") from None


def parse_param(text: str) -> ParamSpec:
    """Parse ``PATH=KIND:…`` (see the module docstring).

    Raises
    ------
    ConfigError
        Naming the ``--param``: a malformed path, an unknown kind, bounds that are not numbers,
        LOW > HIGH, a non-positive step, a log range that is not positive, an empty choice.
    """
    path, sep, range_text = text.partition("=")
    path = path.strip()
    if not sep or not path or not range_text.strip():
        raise ConfigError(f"--param {echo(text)}: expected PATH={_SYNTAX}")
    try:
        parse_override(f"{path}=0")  # the same path grammar as --set
    except ConfigError:
        raise ConfigError(
            f"--param {echo(text)}: malformed path {echo(path)} (dotted keys and [N] indices, "
            "e.g. strategies[0].config.fast_ema_period)",
        ) from None
    kind, _, rest = range_text.strip().partition(":")
    where = f"{path}={range_text.strip()}"
    if kind == "choice":
        values = [part.strip() for part in rest.split(",")]
        if not rest.strip() or any(not value for value in values):
            raise ConfigError(f"--param {where}: choice needs values, e.g. choice:10,20,30")
        choices = tuple(parse_yaml(value, f"--param {path}") for value in values)
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"--param {where}: a choice is listed twice")
        return ParamSpec(path=path, kind="choice", choices=choices)
    if kind not in ("int", "float"):
        raise ConfigError(f"--param {where}: unknown kind {echo(kind)} ({_SYNTAX})")
    parts = rest.split(":")
    if len(parts) not in (2, 3):
        raise ConfigError(f"--param {where}: expected {_SYNTAX}")
    integer = kind == "int"
    low = _number(parts[0], where, integer)
    high = _number(parts[1], where, integer)
    if low > high:
        raise ConfigError(f"--param {where}: LOW {low} is above HIGH {high}")
    step: float | None = 1 if integer else None
    log = False
    if len(parts) == 3:
        if not integer and parts[2] == "log":
            log = True
            if low <= 0:
                raise ConfigError(f"--param {where}: a log range needs LOW > 0")
        else:
            step = _number(parts[2], where, integer)
            if step <= 0:
                raise ConfigError(f"--param {where}: STEP must be positive")
    return ParamSpec(path=path, kind=kind, low=low, high=high, step=step, log=log)  # type: ignore[arg-type]


def grid_search_space(params: list[ParamSpec]) -> dict[str, list[Any]]:
    """The grid sampler's search space: every parameter's grid values by path."""
    return {param.path: param.grid() for param in params}


def trial_overrides(params: list[ParamSpec], values: dict[str, Any]) -> tuple[str, ...]:
    """``PATH=VALUE`` overrides of one trial's values (YAML flow scalars, so strings stay
    strings: ``'close'`` and ``'yes'`` are quoted)."""
    import yaml

    overrides = []
    for param in params:
        value = values[param.path]
        if hasattr(value, "item"):  # numpy scalars from samplers
            value = value.item()
        rendered = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        rendered = rendered.removesuffix("\n...").removesuffix("...").strip()
        overrides.append(f"{param.path}={rendered}")
    return tuple(overrides)
