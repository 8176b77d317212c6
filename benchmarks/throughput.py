"""Full-stack backtests at engine speed (issue 21): throughput, cost per order over the run, peak
memory, against bare NautilusTrader on the same generated catalog.

Generates a synthetic catalog (``catalogs.synthetic``: four instruments of one-minute bars,
``--bars`` bars in all) in a temporary directory, then runs, each in a fresh subprocess and
alternating ``--repeat`` times so that machine load hits them alike:

- ``a`` bare Nautilus: ``nautilus_trader.examples.strategies.ema_cross:EMACross`` (10/20,
  100 shares) on every instrument, a plain ``BacktestNode`` (no grodt code but the probe);
- ``a-flow`` ``a`` at the full stack's order flow: EMACross 1/3, which on the synthetic market
  sends about as many orders per bar (0.66) as ``c`` and ``d`` (0.61–0.68); ``c`` and ``d`` are
  compared with it at (nearly) equal bars and orders;
- ``a-flow-purge`` ``a-flow`` with grodt's ``CachePurgeActor`` (spill only; no reports built):
  bare Nautilus at that order flow without its per-fill cost growing with the run's orders;
- ``b`` grodt EMA cross (``strategies.ema_cross``, 10/20, long/short) on every instrument,
  ``grodt.nodes.backtest.run_backtest``;
- ``c`` S1+S2+S3 on every instrument (12 strategies; no regime, gate or forensics);
- ``d`` the full stack: ``c`` with the regime actor, the portfolio risk gate (loss halts off, so
  trading never stops) and forensics to Parquet;
- ``e`` ``d`` as a user runs it, ``grodt backtest`` with the tearsheet and MLflow tracking (SQLite);
- ``c-nopurge`` (``--no-purge-run``): ``c`` with the cache kept whole, as before issue 21.

Each prints bars/s (event loop), orders/s, wall µs per order in the first and the last tenth of
the orders (``grodt.nodes.throughput_probe``), peak RSS of the process (``os.wait4``) and the
ratios to ``a``. Then the scaling table (``--scaling-days`` sessions per instrument; 1/4/8/16
instruments × S1, S1+S2, S1+S2+S3) and the tearsheet of a generated run with
``--tearsheet-records`` forensics records (84% order and position events, as in a real run).

Usage::

    nice -n 10 .venv/bin/python benchmarks/throughput.py                   # 500k bars
    nice -n 10 .venv/bin/python benchmarks/throughput.py --bars 100000 --repeat 2 --json out.json
    .venv/bin/python benchmarks/throughput.py --bars 20000 --variants a,c --skip-scaling
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SYMBOLS = tuple(f"SYN{chr(ord('A') + i)}" for i in range(16))
STRATEGY_FILES = ("s1_vwap_ema", "s2_mean_reversion", "s3_breakout")
ALL_VARIANTS = ("a", "a-flow", "b", "c", "d", "e")
FLOW_EMA_PERIODS = (1, 3)
"""EMACross periods of ``a-flow``: orders per bar of the synthetic market's EMA pairs (each
crossing after the first sends two orders, close and reverse): 10/20 0.09, 3/6 0.30, 2/3 0.50,
1/3 0.66, 1/2 0.77; S1+S2+S3 send 0.68, the full stack 0.61."""


# -- the catalog ---------------------------------------------------------------------------------


def build_catalog(path: Path, instruments: int, days: int, seed: int = 7) -> list[str]:
    """A synthetic catalog of ``instruments`` × ``days`` sessions of 390 one-minute bars."""
    from catalogs.synthetic import DEFAULT_INSTRUMENTS
    from catalogs.synthetic import InstrumentParams
    from catalogs.synthetic import SyntheticParams
    from catalogs.synthetic import write_synthetic

    params = [
        DEFAULT_INSTRUMENTS[i]
        if i < len(DEFAULT_INSTRUMENTS)
        else InstrumentParams(SYMBOLS[i], 40.0 + 10.0 * i, 0.6 + 0.05 * i, 0.6, 20_000.0)
        for i in range(instruments)
    ]
    written = write_synthetic(
        path, SyntheticParams(days=days, seed=seed, instruments=tuple(params))
    )
    return sorted(written["bar_types"])


# -- node configs --------------------------------------------------------------------------------


def _rules_document(bar_types: list[str], strategies: int) -> dict[str, Any]:
    components = REPO / "node_configs" / "components" / "strategies"
    entries = []
    for k, name in enumerate(STRATEGY_FILES[:strategies], start=1):
        for i, bar_type in enumerate(bar_types, start=1):
            entries.append(
                {
                    "include": str(components / f"{name}_syn.yaml"),
                    "config": {
                        "instrument_id": bar_type.split("-")[0],
                        "bar_type": bar_type,
                        "order_id_tag": f"{k}{i:02d}",
                        "allocation_weight": round(1.0 / (strategies * len(bar_types)), 4),
                        "allow_short": True,
                    },
                },
            )
    return {
        "name": "throughput",
        "venues": [{"include": str(REPO / "node_configs" / "venues" / "synthetic_margin.yaml")}],
        "data": [{"bar_types": bar_types}],
        "strategies": entries,
    }


def variant_document(variant: str, bar_types: list[str]) -> dict[str, Any]:
    """The grodt node config of ``variant`` (b, c, d, e)."""
    if variant == "b":
        return {
            "name": "throughput",
            "venues": [
                {"include": str(REPO / "node_configs" / "venues" / "synthetic_margin.yaml")},
            ],
            "data": [{"bar_types": bar_types}],
            "strategies": [
                {
                    "path": "strategies.ema_cross:EMACross",
                    "config": {
                        "instrument_id": bar_type.split("-")[0],
                        "bar_type": bar_type,
                        "fast_ema_period": 10,
                        "slow_ema_period": 20,
                        "equity_fraction": 0.2,
                        "allow_short": True,
                        "order_id_tag": f"{i:03d}",
                    },
                }
                for i, bar_type in enumerate(bar_types, start=1)
            ],
        }
    document = _rules_document(bar_types, 3)
    if variant in ("d", "e"):
        regime = REPO / "node_configs" / "components" / "actors" / "regime_synthetic.yaml"
        document["actors"] = [{"include": str(regime), "config": {"bar_types": bar_types}}]
        document["risk"] = {
            "include": str(REPO / "node_configs" / "components" / "risk" / "intraday.yaml"),
            # Loss halts off: a halted book sends no orders, and the run would measure bars only.
            "limits": {"daily_loss": None, "max_drawdown": None},
        }
        document["forensics"] = {
            "include": str(REPO / "node_configs" / "components" / "forensics" / "parquet.yaml"),
        }
    return document


# -- children: one run each, in a fresh process --------------------------------------------------


def _probe_config(path: Path) -> dict[str, Any]:
    return {
        "path": "grodt.nodes.throughput_probe:ThroughputProbe",
        "config": {"output_path": str(path)},
    }


def child_bare(
    catalog: Path,
    bar_types: list[str],
    out: Path,
    periods: tuple[int, int] = (10, 20),
    purge: bool = False,
) -> dict[str, Any]:
    from decimal import Decimal

    from nautilus_trader.backtest.config import BacktestDataConfig
    from nautilus_trader.backtest.config import BacktestEngineConfig
    from nautilus_trader.backtest.config import BacktestRunConfig
    from nautilus_trader.backtest.config import BacktestVenueConfig
    from nautilus_trader.backtest.node import BacktestNode
    from nautilus_trader.common.config import ImportableActorConfig
    from nautilus_trader.common.config import LoggingConfig
    from nautilus_trader.config import ImportableStrategyConfig
    from nautilus_trader.model.data import Bar

    probe_path = out / "probe.json"
    strategies = [
        ImportableStrategyConfig(
            strategy_path="nautilus_trader.examples.strategies.ema_cross:EMACross",
            config_path="nautilus_trader.examples.strategies.ema_cross:EMACrossConfig",
            config={
                "instrument_id": bar_type.split("-")[0],
                "bar_type": bar_type,
                "trade_size": Decimal(100),
                "fast_ema_period": periods[0],
                "slow_ema_period": periods[1],
                "request_bars": False,
                "subscribe_trade_ticks": False,
                "order_id_tag": f"{i:03d}",
            },
        )
        for i, bar_type in enumerate(bar_types, start=1)
    ]
    run_config = BacktestRunConfig(
        venues=[
            BacktestVenueConfig(
                name="XSYN",
                oms_type="NETTING",
                account_type="MARGIN",
                base_currency="USD",
                starting_balances=["1000000 USD"],
            ),
        ],
        data=[
            BacktestDataConfig(
                catalog_path=str(catalog),
                data_cls=Bar,
                instrument_id=bar_type.split("-")[0],
                bar_spec="1-MINUTE-LAST",
            )
            for bar_type in bar_types
        ],
        engine=BacktestEngineConfig(
            logging=LoggingConfig(log_level="WARNING"),
            actors=[
                ImportableActorConfig(
                    actor_path="grodt.nodes.throughput_probe:ThroughputProbe",
                    config_path="grodt.nodes.throughput_probe:ThroughputProbeConfig",
                    config={"output_path": str(probe_path)},
                ),
            ]
            + (
                [
                    ImportableActorConfig(
                        actor_path="grodt.nodes.cache_purge:CachePurgeActor",
                        config_path="grodt.nodes.cache_purge:CachePurgeActorConfig",
                        config={"spill_dir": str(out / "spill")},
                    ),
                ]
                if purge
                else []
            ),
            strategies=strategies,
            run_analysis=False,
        ),
        dispose_on_completion=False,
        raise_exception=True,
    )
    node = BacktestNode(configs=[run_config])
    node.build()
    engine = node.get_engine(run_config.id)
    started = time.perf_counter()
    node.run()
    wall = time.perf_counter() - started
    orders = len(engine.cache.orders())
    if purge:
        purger = next(a for a in engine.trader.actors() if hasattr(a, "purged_orders"))
        orders += purger.purged_orders
    bars = int(engine.iteration)
    node.dispose()
    return {"bars": bars, "orders": orders, "engine_seconds": wall, "probe": str(probe_path)}


def child_grodt(
    variant: str,
    catalog: Path,
    bar_types: list[str],
    out: Path,
    purge: bool,
    strategies: int = 3,
) -> dict[str, Any]:
    from grodt.nodes.backtest import run_backtest
    from node_configs.loader import load_backtest_document
    from node_configs.loader import resolve_includes

    probe_path = out / "probe.json"
    if variant == "scaling":
        document = _rules_document(bar_types, strategies)
    else:
        document = variant_document(variant, bar_types)
    document.setdefault("actors", []).append(_probe_config(probe_path))
    spec = load_backtest_document(resolve_includes(document, REPO), variant)
    outcome = run_backtest(spec, catalog, out / "run", quiet=True, purge_cache=purge)
    summary = outcome.summary
    return {
        "bars": summary["bars_processed"],
        "orders": summary["orders"],
        "engine_seconds": summary["wall_seconds"],
        "probe": str(probe_path),
    }


def child_cli(catalog: Path, bar_types: list[str], out: Path) -> dict[str, Any]:
    """``grodt backtest`` as a user runs it (tearsheet and tracking on), in this process."""
    import yaml
    from click.testing import CliRunner

    from grodt.cli import main

    document = variant_document("e", bar_types)
    document["actors"].append(_probe_config(out / "probe.json"))
    config = out / "full.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    os.environ["GRODT_RUNS_DIR"] = str(out / "runs")
    os.environ.pop("GRODT_TRACKING_URI", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    result = CliRunner().invoke(
        main,
        ["backtest", str(config), "--catalog", str(catalog), "--json", "--allow-undelivered"],
        catch_exceptions=False,
    )
    wall = time.perf_counter() - started
    if result.exit_code != 0:
        raise RuntimeError(result.output[-3000:])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "bars": summary["bars_processed"],
        "orders": summary["orders"],
        "engine_seconds": summary["wall_seconds"],
        "total_seconds": wall,
        "tracking": (summary.get("tracking") or {}).get("status"),
        "probe": str(out / "probe.json"),
    }


def child_tearsheet(records: int, out: Path) -> dict[str, Any]:
    """Render the tearsheet of the generated run (written by the ``tearsheet-data`` child, so
    that this process's peak RSS is the tearsheet's own)."""
    from grodt.reports.tearsheet import render_tearsheet

    started = time.perf_counter()
    page = render_tearsheet(out / "run")
    return {
        "records": records,
        "seconds": time.perf_counter() - started,
        "page_mb": page.stat().st_size / 1e6,
    }


def write_generated_run(run_dir: Path, records: int, bars: int = 500_000) -> None:
    """A run directory with ``bars`` one-minute equity rows, a summary, and ``records``
    forensics records in the bridge's Parquet layout: 84% order and position events, then
    decisions, risk verdicts and regime updates."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from grodt.core.records import DecisionRecord
    from grodt.core.records import OrderEventRecord
    from grodt.core.records import PositionEventRecord
    from grodt.core.records import RegimeUpdateRecord
    from grodt.core.records import RiskVerdictRecord
    from grodt.core.records import record_json_dict

    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    index = pd.date_range("2024-01-02 14:31", periods=bars, freq="min", tz="UTC")
    equity = 1e6 * np.exp(np.cumsum(rng.normal(0, 2e-4, bars)))
    pd.DataFrame(
        {"equity": equity, "gross_exposure": 0.5, "net_exposure": 0.1, "pnl:S1-101": equity - 1e6},
        index=index,
    ).to_parquet(run_dir / "equity.parquet")
    (run_dir / "summary.json").write_text(
        json.dumps({"name": "generated", "starting_equity": 1e6, "periods_per_year": 252}),
    )
    ts = index.asi8
    kinds = {
        "grodt.forensics.orders": 0.64,
        "grodt.forensics.positions": 0.20,
        "grodt.forensics.decisions": 0.08,
        "grodt.forensics.risk": 0.06,
        "grodt.forensics.regime": 0.02,
    }
    seq = 0
    for topic, share in kinds.items():
        count = int(records * share)
        folder = run_dir / "forensics" / topic
        folder.mkdir(parents=True, exist_ok=True)
        rows: dict[str, list[Any]] = {
            k: []
            for k in (
                "session",
                "seq",
                "topic",
                "key",
                "record_type",
                "trace_id",
                "ts_event",
                "ts_init",
                "component_id",
                "payload",
            )
        }
        # One validated record per topic as the template; the others vary its time and ids
        # (json.dumps of the template's JSON object: 1M records in seconds, not minutes).
        template = record_json_dict(
            _generated_record(
                topic,
                0,
                int(ts[0]),
                rng,
                (OrderEventRecord, PositionEventRecord, DecisionRecord, RiskVerdictRecord),
                RegimeUpdateRecord,
            ),
        )
        regime_draws = rng.dirichlet([2, 2, 2], size=count) if topic.endswith("regime") else None
        instruments = ("SYNA.XSYN", "SYNB.XSYN", "SYNC.XSYN", "SYND.XSYN")
        for i in range(count):
            t = int(ts[(i * len(ts)) // max(count, 1)])
            record = dict(template, ts_event=t, ts_init=t, trace_id=f"S1-101:{t}:{i}")
            if "client_order_id" in record:
                record["client_order_id"] = f"O-{i}"
            if "verdict" in record:
                record["verdict"] = ("approve", "resize", "deny")[i % 3]
                record["reason"] = "" if i % 3 == 0 else "net_exposure"
            if regime_draws is not None:
                p = regime_draws[i]
                record["probabilities"] = {"bull": p[0], "bear": p[1], "sideways": p[2]}
                record["instrument_id"] = instruments[i % 4]
            seq += 1
            for key, value in (
                ("session", "s1"),
                ("seq", seq),
                ("topic", topic),
                ("key", "k"),
                ("record_type", record["record_type"]),
                ("trace_id", record["trace_id"]),
                ("ts_event", t),
                ("ts_init", t),
                ("component_id", record["component_id"]),
                ("payload", json.dumps(record, separators=(",", ":"))),
            ):
                rows[key].append(value)
        pq.write_table(pa.table(rows), folder / "part-s1-00000.parquet", row_group_size=10_000)


def _generated_record(topic, i, t, rng, classes, regime_cls):
    order_cls, position_cls, decision_cls, risk_cls = classes
    common = {"ts_event": t, "ts_init": t, "trace_id": f"S1-101:{t}:{i}"}
    if topic.endswith("orders"):
        return order_cls(
            component_id="S1-101",
            event_type="OrderFilled",
            strategy_id="S1-101",
            instrument_id="SYNA.XSYN",
            client_order_id=f"O-{i}",
            side="BUY",
            quantity="100",
            last_qty="100",
            last_px="100.01",
            commission="0.01 USD",
            **common,
        )
    if topic.endswith("positions"):
        return position_cls.model_validate(
            {
                "component_id": "S1-101",
                "event_type": "PositionOpened",
                "strategy_id": "S1-101",
                "instrument_id": "SYNA.XSYN",
                "position_id": "SYNA.XSYN-S1-101",
                "side": "LONG",
                "signed_qty": 100.0,
                "quantity": "100",
                "avg_px_open": 100.01,
                **common,
            },
        )
    if topic.endswith("decisions"):
        return decision_cls.model_validate(
            {
                "component_id": "S1-101",
                "strategy_id": "S1-101",
                "instrument_id": "SYNA.XSYN",
                "action": "entry",
                "reason": "vwap_ema_pullback",
                "features": {"close": 100.0, "atr": 0.1, "ema": 99.9, "vwap": 99.8},
                "regime_probabilities": {"bull": 0.5, "bear": 0.2, "sideways": 0.3},
                "signal": {"strength": 1.0},
                "allocation_weight": 0.1,
                **common,
            },
        )
    if topic.endswith("risk"):
        return risk_cls(
            component_id="RiskGate",
            strategy_id="S1-101",
            instrument_id="SYNA.XSYN",
            client_order_id=f"O-{i}",
            verdict=("approve", "resize", "deny")[i % 3],
            reason="" if i % 3 == 0 else "net_exposure",
            requested_quantity="100",
            approved_quantity="100",
            equity=1e6,
            gross_exposure=5e5,
            net_exposure=1e5,
            **common,
        )
    p = rng.dirichlet([2, 2, 2])
    return regime_cls(
        component_id="RegimeActor",
        instrument_id=("SYNA.XSYN", "SYNB.XSYN", "SYNC.XSYN", "SYND.XSYN")[i % 4],
        probabilities={"bull": p[0], "bear": p[1], "sideways": p[2]},
        most_likely="bull",
        entropy=0.9,
        **common,
    )


def _child_main(argv: list[str]) -> None:
    kind, out = argv[0], Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    if kind == "tearsheet-data":
        write_generated_run(out / "run", int(argv[2]))
        result = {"records": int(argv[2])}
    elif kind == "tearsheet":
        result = child_tearsheet(int(argv[2]), out)
    else:
        catalog = Path(argv[2])
        bar_types = argv[3].split(",")
        if kind == "a":
            result = child_bare(catalog, bar_types, out)
        elif kind == "a-flow":
            result = child_bare(catalog, bar_types, out, FLOW_EMA_PERIODS)
        elif kind == "a-flow-purge":
            result = child_bare(catalog, bar_types, out, FLOW_EMA_PERIODS, purge=True)
        elif kind == "e":
            result = child_cli(catalog, bar_types, out)
        elif kind == "c-nopurge":
            result = child_grodt("c", catalog, bar_types, out, purge=False)
        elif kind.startswith("scaling"):
            result = child_grodt("scaling", catalog, bar_types, out, True, int(kind[-1]))
        else:
            result = child_grodt(kind, catalog, bar_types, out, purge=True)
    print("RESULT " + json.dumps(result), flush=True)


# -- the parent: run children, measure, print ----------------------------------------------------


def run_child(args: list[str]) -> dict[str, Any]:
    """Run one child; its result plus the peak RSS (MB) and wall seconds of its process."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = Path(args[1])
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with (out / "stdout.txt").open("w") as stdout, (out / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", *args],
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=REPO,
        )
        # wait4 reaps the child and gives its own resource usage (peak RSS of that process).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        text = (out / "stderr.txt").read_text()
        raise RuntimeError(f"child {args[0]} failed:\n{text[-4000:]}")
    lines = (out / "stdout.txt").read_text().splitlines()
    line = next(x for x in reversed(lines) if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["process_seconds"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    if "probe" in result:
        from grodt.nodes.throughput_probe import decile_costs
        from grodt.nodes.throughput_probe import memory_profile
        from grodt.nodes.throughput_probe import position_order_lists

        samples = json.loads(Path(result.pop("probe")).read_text())
        result["us_per_order_first"], result["us_per_order_last"] = decile_costs(samples)
        result.update(memory_profile(samples))
        lists = position_order_lists(samples)
        result["position_orders_first"], result["position_orders_last"] = lists
    return result


def _figures(result: dict[str, Any]) -> dict[str, float]:
    seconds = result["engine_seconds"]
    return {
        "bars_per_s": result["bars"] / seconds,
        "orders_per_s": result["orders"] / seconds,
    }


def main() -> None:
    if "--child" in sys.argv:
        _child_main(sys.argv[sys.argv.index("--child") + 1 :])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=500_000, help="bars in all (4 instruments)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS))
    parser.add_argument("--no-purge-run", action="store_true", help="also run c without purge")
    parser.add_argument("--scaling-days", type=int, default=5)
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--tearsheet-records", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if args.no_purge_run:
        variants.append("c-nopurge")
    report: dict[str, Any] = {"machine": _machine(), "bars": args.bars}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        days = max(math.ceil(args.bars / 4 / 390), 2)
        started = time.perf_counter()
        bar_types = build_catalog(root / "catalog", 4, days)
        print(
            f"catalog: 4 instruments × {days} sessions × 390 bars = {4 * days * 390:,} bars "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for r in range(args.repeat):
            for variant in variants:
                out = root / f"{variant}-{r}"
                try:
                    result = run_child(
                        [variant, str(out), str(root / "catalog"), ",".join(bar_types)],
                    )
                except RuntimeError as e:
                    print(f"  run {r + 1} {variant}: FAILED {e}", flush=True)
                    continue
                result.update(_figures(result))
                runs[variant].append(result)
                print(f"  run {r + 1} {variant}: " + json.dumps(_rounded(result)), flush=True)
        report["runs"] = runs
        _print_table(runs)
        if not args.skip_scaling:
            report["scaling"] = _scaling(root, args.scaling_days)
        if args.tearsheet_records:
            folder = str(root / "tearsheet")
            run_child(["tearsheet-data", folder, str(args.tearsheet_records)])
            result = run_child(["tearsheet", folder, str(args.tearsheet_records)])
            report["tearsheet"] = result
            print(
                f"\ntearsheet of a generated run with {args.tearsheet_records:,} forensics records "
                f"and 500,000 equity rows: {result['seconds']:.1f} s "
                f"({result['page_mb']:.1f} MB page), process peak RSS "
                f"{result['peak_rss_mb']:,.0f} MB (process wall {result['process_seconds']:.1f} s)",
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


def _rounded(result: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}


def _median(rows: list[dict[str, Any]], key: str) -> float:
    values = [row[key] for row in rows if row.get(key) is not None and not math.isnan(row[key])]
    return statistics.median(values) if values else float("nan")


def _print_table(runs: dict[str, list[dict[str, Any]]]) -> None:
    print("\nmedians over the runs of each variant; ratios to a (bare Nautilus)")
    header = (
        f"{'run':<14}{'bars':>10}{'orders':>10}{'bars/s':>10}{'orders/s':>10}"
        f"{'µs/order 1st':>14}{'µs/order last':>15}{'peak RSS MB':>13}"
        f"{'bars/s ÷ a':>12}{'µs/order ÷ a':>14}{'RSS ÷ a':>9}"
    )
    print(header)
    base = runs.get("a")
    base_bps = _median(base, "bars_per_s") if base else float("nan")
    base_rss = _median(base, "peak_rss_mb") if base else float("nan")
    base_upo = (
        1e6 / _median(base, "orders_per_s") if base and _median(base, "orders_per_s") else math.nan
    )
    for variant, rows in runs.items():
        if not rows:
            continue
        bps = _median(rows, "bars_per_s")
        ops = _median(rows, "orders_per_s")
        upo = 1e6 / ops if ops else math.nan
        rss = _median(rows, "peak_rss_mb")
        print(
            f"{variant:<14}{_median(rows, 'bars'):>10,.0f}{_median(rows, 'orders'):>10,.0f}"
            f"{bps:>10,.0f}{ops:>10,.0f}{_median(rows, 'us_per_order_first'):>14,.0f}"
            f"{_median(rows, 'us_per_order_last'):>15,.0f}{rss:>13,.0f}"
            f"{bps / base_bps:>12.2f}{upo / base_upo:>14.2f}{rss / base_rss:>9.2f}",
        )
        loop_peak = _median(rows, "loop_peak_rss_mb")
        if not math.isnan(loop_peak):
            print(
                f"{'':<10}RSS in the event loop: peak {loop_peak:,.0f} MB, at mid-run "
                f"{_median(rows, 'mid_rss_mb'):,.0f} MB, "
                f"at its end {_median(rows, 'end_rss_mb'):,.0f} MB",
            )
        lists_first = _median(rows, "position_orders_first")
        if not math.isnan(lists_first):
            print(
                f"{'':<10}longest orders_for_position list of an open position: "
                f"{lists_first:,.0f} in the first tenth of the bars, "
                f"{_median(rows, 'position_orders_last'):,.0f} in the last",
            )
        if variant == "e":
            print(
                f"{'':<10}e: total wall incl. tearsheet and tracking "
                f"{_median(rows, 'total_seconds'):,.1f} s"
            )
    for baseline in ("a-flow", "a-flow-purge"):
        flow = runs.get(baseline)
        if not flow:
            continue
        flow_bps = _median(flow, "bars_per_s")
        flow_opb = _median(flow, "orders") / _median(flow, "bars")
        print(f"\nat equal order flow: ratios to {baseline} ({flow_opb:.3f} orders per bar)")
        for variant in ("c", "d", "e"):
            rows = runs.get(variant)
            if not rows:
                continue
            opb = _median(rows, "orders") / _median(rows, "bars")
            print(
                f"  {variant}: {opb:.3f} orders per bar ({opb / flow_opb:.2f}× {baseline}'s); "
                f"bars/s {_median(rows, 'bars_per_s') / flow_bps:.2f}× {baseline}'s; "
                f"event-loop µs per order "
                f"{_median(flow, 'orders_per_s') / _median(rows, 'orders_per_s'):.2f}× "
                f"{baseline}'s",
            )


def _scaling(root: Path, days: int) -> list[dict[str, Any]]:
    print(
        f"\nscaling: {days} sessions (390 one-minute bars each) per instrument; "
        "S1 / S1+S2 / S1+S2+S3 on every instrument; bars/s (orders)"
    )
    catalog = root / "scaling-catalog"
    bar_types = build_catalog(catalog, 16, days)
    rows = []
    print(
        f"{'instruments':<12}"
        + "".join(f"{n} strateg{'y' if n == 1 else 'ies'}/instr.".rjust(24) for n in (1, 2, 3))
    )
    for count in (1, 4, 8, 16):
        cells = []
        for strategies in (1, 2, 3):
            out = root / f"scaling-{count}-{strategies}"
            result = run_child(
                [f"scaling{strategies}", str(out), str(catalog), ",".join(bar_types[:count])],
            )
            result.update(_figures(result), instruments=count, strategies=strategies)
            rows.append(result)
            cells.append(f"{result['bars_per_s']:,.0f} ({result['orders']:,})")
        print(f"{count:<12}" + "".join(c.rjust(24) for c in cells), flush=True)
    return rows


def _machine() -> dict[str, Any]:
    import platform

    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


if __name__ == "__main__":
    main()
