"""Benchmark the portfolio risk gate.

1. Gate cost per order, all limits on (max weight, HRP band, gross, net, two group caps, trade
   risk, order notional, daily loss, drawdown, CVaR on 250 scenarios), in portfolio states of
   growing size, next to the bare endpoint hook (a pass-through handler at
   ``RiskEngine.execute``). The gate's own time excludes the forwarded call and the strategy
   handlers that run when it resizes or denies.
2. Backtest throughput of S1+S2+S3 over the four synthetic instruments
   (``node_configs/backtest/risk_rules_synthetic.yaml``, each strategy allocated a quarter of
   equity) with the gate off, with the bare hook, and with the gate on, in one process.

Usage::

    .venv/bin/python benchmarks/risk_gate.py                 # builds a 10-session catalog
    .venv/bin/python benchmarks/risk_gate.py --catalog DIR --days 60 --json out.json
    .venv/bin/python benchmarks/risk_gate.py --quick         # part 1 only
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

from risk_engine.sandbox import GateSandbox

REPO = Path(__file__).resolve().parents[1]

ALL_LIMITS = {
    "limits": {
        "max_weight": 0.25,
        "gross_exposure": 2.0,
        "net_exposure": 1.0,
        "trade_risk": 0.01,
        "max_order_notional": 5_000_000,
        "daily_loss": 0.05,
        "max_drawdown": 0.2,
        "groups": {
            "g1": {"members": ["S00.SIM", "S01.SIM", "S02.SIM"], "max_weight": 0.5},
            "g2": {"members": ["S03.SIM", "S04.SIM", "S05.SIM"], "max_weight": 0.5},
        },
        "cvar": {"limit": 0.5, "alpha": 0.95, "window": 250, "min_observations": 60},
    },
    "hrp": {"tolerance": 3.0, "window": 250, "min_history": 60},
}


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def gate_cost(positions: int, open_orders: int, orders: int) -> dict:
    """Own cost of the gate per order (µs) in a state with ``positions`` open positions and
    ``open_orders`` resting orders, three strategies, 20 instruments."""
    symbols = [f"S{k:02d}" for k in range(20)]
    box = GateSandbox(symbols=symbols, strategies=3, account_type="MARGIN", balance=1e9)
    try:
        for k in range(positions):
            box.market(symbols[k % 20], "BUY" if k % 3 else "SELL", 100, strategy=k % 3)
        box.step()
        for k in range(open_orders):
            box.limit(symbols[k % 20], "BUY", 50, 90.0, strategy=k % 3)
        box.step()
        gate = box.install(ALL_LIMITS)
        rng = np.random.default_rng(1)
        box.publish_targets(
            {s: 1 / 20 for s in symbols},
            returns=rng.standard_t(4, size=(250, 20)) * 0.01,
        )
        strategies = box.strategies
        bus = box.engine.kernel.msgbus

        def single(k: int) -> SubmitOrder:
            strategy = strategies[k % 3]
            order = strategy.order_factory.market(
                box.iid(symbols[k % 20]),
                OrderSide.BUY,
                Quantity.from_int(10),
            )
            box.cache.add_order(order)
            return SubmitOrder(
                trader_id=strategy.trader_id,
                strategy_id=strategy.id,
                order=order,
                command_id=UUID4(),
                ts_init=0,
            )

        def bracket(k: int) -> SubmitOrderList:
            strategy = strategies[k % 3]
            order_list = strategy.order_factory.bracket(
                box.iid(symbols[k % 20]),
                OrderSide.BUY,
                Quantity.from_int(10),
                sl_trigger_price=Price(95.0, 2),
                tp_price=Price(110.0, 2),
            )
            box.cache.add_order_list(order_list)
            for order in order_list.orders:
                box.cache.add_order(order)
            return SubmitOrderList(
                trader_id=strategy.trader_id,
                strategy_id=strategy.id,
                order_list=order_list,
                command_id=UUID4(),
                ts_init=0,
            )

        def noop(command: object) -> None:
            return None

        results: dict[str, dict] = {}
        for label, make in (("market", single), ("bracket", bracket)):
            commands = [make(k) for k in range(orders)]
            gate.cost.gate_ns.clear()
            for command in commands:
                gate._execute(command, noop)
                gate._pending.clear()  # keep the state fixed: nothing reaches the venue
            own = [ns / 1000 for ns in list(gate.cost.gate_ns)[orders // 10 :]]
            results[label] = {
                "mean_us": statistics.fmean(own),
                "p50_us": _percentile(own, 50),
                "p99_us": _percentile(own, 99),
            }
        # The bare hook: what replacing the endpoint with a Python pass-through costs.
        gate.uninstall()
        original = box.engine.kernel.risk_engine.execute
        bus.deregister("RiskEngine.execute", original)

        def passthrough(command: object) -> None:
            noop(command)

        bus.register("RiskEngine.execute", passthrough)
        commands = [single(k) for k in range(orders)]
        started = time.perf_counter_ns()
        for command in commands:
            bus.send("RiskEngine.execute", command)
        bare = (time.perf_counter_ns() - started) / orders / 1000
        bus.deregister("RiskEngine.execute", passthrough)
        bus.register("RiskEngine.execute", original)
        return {
            "positions": positions,
            "open_orders": open_orders,
            "bare_hook_send_us": bare,
            **results,
        }
    finally:
        box.dispose()


def throughput(catalog: Path, days: int | None) -> dict:
    """Bars/s of the S1+S2+S3 synthetic config with the gate off, bare hook, and on."""
    from nautilus_trader.backtest.node import BacktestNode

    from grodt.nodes.backtest import build_run_config
    from node_configs.loader import load_backtest_config
    from risk_engine.extension import create_extension

    spec = load_backtest_config(REPO / "node_configs" / "backtest" / "risk_rules_synthetic.yaml")
    # The shipped config over-allocates on purpose (allocation_weight 1.0 per strategy); without
    # the gate that makes Nautilus 1.221 abort the process (Rust panic in Quantity::from_raw on
    # oversized fills). A quarter each keeps the gate-off baseline alive; the gate still cuts.
    spec = spec.model_copy(
        update={
            "strategies": [
                s.model_copy(update={"config": {**s.config, "allocation_weight": 0.25}})
                for s in spec.strategies
            ],
        },
    )
    out: dict[str, dict] = {}
    for variant in ("off", "bare_hook", "gate"):
        print(f"backtest {variant:>9}: running", flush=True)
        extension = create_extension(spec.risk, spec, None) if variant == "gate" else None
        actors = extension.actors() if extension is not None else []
        config = build_run_config(spec, catalog, None, quiet=True, extra_actors=actors)
        node = BacktestNode(configs=[config])
        node.build()
        engine = node.get_engine(config.id)
        kernel = engine.kernel
        if extension is not None:
            extension.install(kernel)
        elif variant == "bare_hook":
            original = kernel.risk_engine.execute
            kernel.msgbus.deregister("RiskEngine.execute", original)
            kernel.msgbus.register("RiskEngine.execute", lambda c, forward=original: forward(c))
        started = time.perf_counter()
        node.run()
        wall = time.perf_counter() - started
        bars = int(engine.iteration)
        figures = {"bars": bars, "seconds": wall, "bars_per_second": bars / wall}
        figures["orders"] = len(engine.cache.orders())
        if extension is not None:
            summary = extension.finish(kernel)
            figures["verdicts"] = summary["verdicts"]
            figures["denials_by_reason"] = summary["denials_by_reason"]
            figures["resizes_by_reason"] = summary["resizes_by_reason"]
            figures["gate_us"] = summary["gate_us"]
        node.dispose()
        out[variant] = figures
    out["gate_vs_off"] = out["gate"]["bars_per_second"] / out["off"]["bars_per_second"]
    out["days"] = days
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=None, help="catalog with SYN*.XSYN")
    parser.add_argument("--days", type=int, default=10, help="sessions to build (no --catalog)")
    parser.add_argument("--orders", type=int, default=2000, help="orders per cost measurement")
    parser.add_argument("--quick", action="store_true", help="gate cost only")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()

    report: dict = {"gate_cost": []}
    for positions, open_orders in ((0, 0), (10, 10), (20, 40)):
        row = gate_cost(positions, open_orders, args.orders)
        report["gate_cost"].append(row)
        print(
            f"state {positions:>2} positions, {open_orders:>2} open orders: "
            f"market {row['market']['p50_us']:6.1f} µs p50 ({row['market']['mean_us']:6.1f} mean,"
            f" {row['market']['p99_us']:6.1f} p99), bracket {row['bracket']['p50_us']:6.1f} µs "
            f"p50; bare hook send {row['bare_hook_send_us']:.2f} µs",
            flush=True,
        )
    if not args.quick:
        catalog = args.catalog
        if catalog is None:
            from catalogs.sample import build_sample_catalog
            from catalogs.synthetic import SyntheticParams

            catalog = Path(tempfile.mkdtemp(prefix="risk-bench-")) / "catalog"
            build_sample_catalog(
                catalog,
                datasets=("synthetic",),
                synthetic=SyntheticParams(days=args.days),
            )
        result = throughput(catalog, args.days if args.catalog is None else None)
        report["throughput"] = result
        for variant in ("off", "bare_hook", "gate"):
            figures = result[variant]
            print(
                f"backtest {variant:>9}: {figures['bars']:,} bars in {figures['seconds']:.2f} s "
                f"= {figures['bars_per_second']:,.0f} bars/s, {figures['orders']:,} orders",
            )
        print(f"gate on / off throughput: {result['gate_vs_off']:.2f}")
        print(f"verdicts: {result['gate']['verdicts']}")
        print(f"denials by reason: {result['gate']['denials_by_reason']}")
        print(f"resizes by reason: {result['gate']['resizes_by_reason']}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
