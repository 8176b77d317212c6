"""Nautilus configs of the spec sections both node kinds share: strategies, actors, logging and
simulated venues (a backtest venue, or a sandbox venue of a paper node)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nautilus_trader.backtest.config import BacktestVenueConfig
from nautilus_trader.backtest.config import FillModelConfig
from nautilus_trader.backtest.config import ImportableFeeModelConfig
from nautilus_trader.backtest.config import ImportableFillModelConfig
from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.common.config import LoggingConfig
from nautilus_trader.config import ImportableStrategyConfig
from nautilus_trader.system.kernel import NautilusKernel

from grodt.nodes.fill_timing import fill_timing_modules
from node_configs.schema import ComponentSpec
from node_configs.schema import LoggingSpec
from node_configs.schema import VenueSpec

__all__ = [
    "importable_actor",
    "importable_strategy",
    "keep_logging_alive",
    "logging_config",
    "starting_equity",
    "venue_config",
]

_FEE_MODELS = {
    "maker_taker": "MakerTakerFeeModel",
    "fixed": "FixedFeeModel",
    "per_contract": "PerContractFeeModel",
}


def importable_strategy(component: ComponentSpec) -> ImportableStrategyConfig:
    return ImportableStrategyConfig(
        strategy_path=component.path,
        config_path=component.resolved_config_path,
        config=dict(component.config),
    )


def importable_actor(component: ComponentSpec) -> ImportableActorConfig:
    return ImportableActorConfig(
        actor_path=component.path,
        config_path=component.resolved_config_path,
        config=dict(component.config),
    )


def logging_config(spec: LoggingSpec, run_dir: Path | None, quiet: bool) -> LoggingConfig:
    """Console logging at ``spec.level`` (OFF when ``quiet``), JSON file logs in the run dir."""
    file_level = None if spec.file_level == "OFF" or run_dir is None else spec.file_level
    return LoggingConfig(
        log_level="OFF" if quiet else spec.level,
        log_level_file=file_level,
        log_directory=str(run_dir / "logs") if file_level else None,
        log_file_format="JSON" if file_level else None,
        log_colors=False,
        # Nautilus' own engine cannot price-check MARKET orders on bar data and warns on every
        # one; the portfolio risk gate does those checks. Keep the warning in the file log only.
        log_component_levels={"RiskEngine": "ERROR"} if not quiet else None,
    )


_PROCESS_LOG_GUARDS: list[Any] = []


def keep_logging_alive(kernel: NautilusKernel) -> None:
    """Keep the kernel's log guard for the life of the process.

    Nautilus initialises its (Rust) logging once per process, in the first kernel, and hands
    that kernel the guard. When that kernel is garbage-collected the guard drops and logging
    reads as uninitialised, so the next kernel initialises it again and the Rust logger panics
    (the process aborts). Every node this process builds hands its guard here.
    """
    guard = kernel.get_log_guard()
    if guard is not None and not any(guard is kept for kept in _PROCESS_LOG_GUARDS):
        _PROCESS_LOG_GUARDS.append(guard)


def venue_config(venue: VenueSpec) -> BacktestVenueConfig:
    """The simulated venue: a BacktestNode's, and the sandbox execution client's of a paper node."""
    fee_model = None
    if venue.fee_model.kind != "maker_taker" or venue.fee_model.commission is not None:
        cls_name = _FEE_MODELS[venue.fee_model.kind]
        fee_model = ImportableFeeModelConfig(
            fee_model_path=f"nautilus_trader.backtest.models:{cls_name}",
            config_path=f"nautilus_trader.backtest.config:{cls_name}Config",
            config={"commission": venue.fee_model.commission} if venue.fee_model.commission else {},
        )
    fill = venue.fill_model
    return BacktestVenueConfig(
        name=venue.name,
        oms_type=venue.oms_type,
        account_type=venue.account_type,
        base_currency=venue.base_currency,
        starting_balances=list(venue.starting_balances),
        default_leverage=venue.default_leverage,
        leverages=dict(venue.leverages) if venue.leverages else None,
        fill_model=ImportableFillModelConfig(
            fill_model_path="nautilus_trader.backtest.models:FillModel",
            config_path="nautilus_trader.backtest.config:FillModelConfig",
            config=FillModelConfig(
                prob_fill_on_limit=fill.prob_fill_on_limit,
                prob_fill_on_stop=fill.prob_fill_on_stop,
                prob_slippage=fill.prob_slippage,
                random_seed=fill.random_seed,
            ).dict(),
        ),
        fee_model=fee_model,
        bar_adaptive_high_low_ordering=venue.bar_adaptive_high_low_ordering,
        reject_stop_orders=venue.reject_stop_orders,
        support_contingent_orders=venue.support_contingent_orders,
        use_reduce_only=venue.use_reduce_only,
        modules=fill_timing_modules(venue.fill_at),
    )


def starting_equity(venues: Sequence[VenueSpec]) -> float:
    """Sum of the venues' starting balances (``"100_000 USD"`` → 100000.0), currencies ignored:
    the equity curve is in one currency."""
    return sum(
        float(balance.split()[0].replace("_", ""))
        for venue in venues
        for balance in venue.starting_balances
    )
