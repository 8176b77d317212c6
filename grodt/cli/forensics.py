"""``grodt forensics``: read decision forensics back.

``grodt forensics tail [STREAM...]`` prints records from Kafka (``--bootstrap`` or
``GRODT_KAFKA_BOOTSTRAP``) or from a run directory (``--run DIR``, the Parquet output of the
embedded default). ``grodt forensics trace TRACE_ID --run DIR`` reconstructs one decision's story:
decision → risk verdict → order → fills → position events. ``grodt forensics flush [OUTBOX]``
delivers by hand what ended runs left in a Kafka sink's shared outbox.
"""

import json
import sys
from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from grodt.core.errors import EXIT_UNDELIVERED

STREAM_ALIASES = ("decisions", "risk", "allocations", "regime", "orders", "positions")


def undelivered_message(summary: dict[str, Any]) -> str | None:
    """What a run summary says about forensics records it could not deliver (None: all
    delivered, or forensics off): how many, where they wait, and how to deliver them."""
    figures = (summary.get("extensions") or {}).get("forensics") or {}
    left = int(figures.get("undelivered") or 0)
    if not left:
        return None
    where = figures.get("outbox") or figures.get("spill_dir")
    how = (
        f"the next run using this sink delivers them first, or `grodt forensics flush {where}`"
        if figures.get("outbox")
        else "the next run using this spill directory delivers them first"
    )
    return f"forensics: {left:,} records NOT delivered, kept in {where} ({how})"


def exit_if_undelivered(summary: dict[str, Any], allow: bool) -> None:
    """End a finished run's command: forensics records left undelivered are said on stderr and
    make the exit status :data:`EXIT_UNDELIVERED`, unless ``allow``
    (``--allow-undelivered``)."""
    message = undelivered_message(summary)
    if message is None:
        return
    if allow:
        click.echo(f"warning: {message}; accepted (--allow-undelivered)", err=True)
        return
    click.echo(
        f"error: {message}; exit {EXIT_UNDELIVERED} (--allow-undelivered accepts it)", err=True
    )
    sys.exit(EXIT_UNDELIVERED)


def _time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def format_record(stored: Any) -> str:
    """One line per record: time, kind, who, what, and the trace id."""
    from grodt.core.records import AllocationRecord
    from grodt.core.records import DecisionRecord
    from grodt.core.records import OrderEventRecord
    from grodt.core.records import PositionEventRecord
    from grodt.core.records import RegimeUpdateRecord
    from grodt.core.records import RiskVerdictRecord

    record = stored.record
    head = f"{_time(record.ts_event)}  {record.record_type:<14}"
    if isinstance(record, DecisionRecord):
        intended = record.intended_order
        order = f"{intended.side} {intended.quantity} " if intended else ""
        s = record.signal
        body = (
            f"{record.strategy_id}  {record.instrument_id}  {record.action}  {order}"
            f"strength {s.strength:+.2f} μ {s.expected_return:+.5f} σ {s.uncertainty:.5f} "
            f"conf {s.confidence:.2f}  {record.reason!r}"
        )
    elif isinstance(record, RiskVerdictRecord):
        body = (
            f"{record.strategy_id}  {record.instrument_id}  {record.client_order_id}  "
            f"{record.verdict} {record.requested_quantity}→{record.approved_quantity}"
            + (f"  {record.reason!r}" if record.reason else "")
        )
    elif isinstance(record, AllocationRecord):
        weights = ", ".join(f"{k} {v:.3f}" for k, v in record.weights.items())
        reason = f"  {record.reason!r}" if record.reason else ""
        body = f"{record.component_id}  {weights}{reason}"
    elif isinstance(record, RegimeUpdateRecord):
        probabilities = " ".join(f"{k} {v:.2f}" for k, v in record.probabilities.items())
        body = (
            f"{record.instrument_id}  {record.most_likely}  ({probabilities})  "
            f"entropy {record.entropy:.3f}"
        )
    elif isinstance(record, OrderEventRecord):
        detail = ""
        if record.event_type == "OrderFilled":
            detail = f"  {record.last_qty} @ {record.last_px}"
        elif record.event_type == "OrderInitialized":
            detail = f"  {record.side} {record.quantity} {record.order_type}"
        elif record.reason:
            detail = f"  {record.reason!r}"
        body = (
            f"{record.strategy_id}  {record.instrument_id}  {record.client_order_id}  "
            f"{record.event_type}{detail}"
        )
    elif isinstance(record, PositionEventRecord):
        body = (
            f"{record.strategy_id}  {record.instrument_id}  {record.event_type}  {record.side} "
            f"{record.quantity}  realized {record.realized_pnl}"
        )
    else:
        body = record.component_id
    trace = f"  trace={record.trace_id}" if record.trace_id else ""
    return f"{head}  {body}{trace}"


def _topics(streams: Iterable[str]) -> list[str]:
    """Stream aliases (``decisions``, ``orders``, ...) → default topic names; others verbatim."""
    from actors.forensics.config import TopicNames

    defaults = TopicNames().model_dump()
    chosen = [defaults.get(s, s) for s in streams]
    return chosen or list(defaults.values())


def _bootstrap(option: str | None) -> str | None:
    from grodt.core.settings import get_settings

    return option or get_settings().kafka_bootstrap


def _emit(stored: Any, as_json: bool) -> None:
    from grodt.core.records import record_json_dict

    if as_json:
        payload = {
            "topic": stored.topic,
            "key": stored.key,
            "session": stored.session,
            "seq": stored.seq,
            "delivered": stored.delivered,
            "record": record_json_dict(stored.record),
        }
        click.echo(json.dumps(payload))
    else:
        click.echo(format_record(stored))


@click.group(name="forensics")
def command() -> None:
    """Read decision forensics back (Kafka topics or a run's Parquet output)."""


@command.command(name="tail")
@click.argument("streams", nargs=-1)
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers (GRODT_KAFKA_BOOTSTRAP).")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Read a run directory's Parquet output instead of Kafka.",
)
@click.option("--from-beginning/--new-only", default=True, help="Start at the earliest record.")
@click.option("-f", "--follow", is_flag=True, help="Keep waiting for new records (Kafka).")
@click.option("-n", "--max", "max_records", type=int, default=None, help="Stop after N records.")
@click.option("--trace-id", default=None, help="Only records of this trace.")
@click.option("--idle-timeout", type=float, default=3.0, show_default=True, help="Seconds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def tail(
    streams: tuple[str, ...],
    bootstrap: str | None,
    run_dir: Path | None,
    from_beginning: bool,
    follow: bool,
    max_records: int | None,
    trace_id: str | None,
    idle_timeout: float,
    as_json: bool,
) -> None:
    """Print forensics records as they arrive.

    STREAMS are topic names or the aliases decisions, risk, allocations, regime, orders,
    positions (default: all).
    """
    from grodt.core.errors import GrodtError
    from grodt.forensics.reader import consume
    from grodt.forensics.reader import read_run

    topics = _topics(streams)
    count = 0
    if run_dir is not None:
        records: Iterable[Any] = read_run(run_dir, topics=topics, trace_id=trace_id)
    else:
        servers = _bootstrap(bootstrap)
        if not servers:
            raise GrodtError(
                "no Kafka to read: give --bootstrap HOST:PORT, set GRODT_KAFKA_BOOTSTRAP, or "
                "read a run's Parquet output with --run DIR",
            )
        records = consume(
            servers,
            topics,
            from_beginning=from_beginning,
            follow=follow,
            idle_timeout_s=idle_timeout,
        )
    for stored in records:
        if trace_id is not None and stored.record.trace_id != trace_id:
            continue
        _emit(stored, as_json)
        count += 1
        if max_records is not None and count >= max_records:
            break
    if not as_json:
        click.echo(f"({count} records)", err=True)


@command.command(name="trace")
@click.argument("trace_id")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Run directory whose forensics to read (the embedded Parquet output).",
)
@click.option("--bootstrap", default=None, help="Read Kafka instead (scans every topic).")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as one JSON object.")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when the trace does not join completely (verdicts required).",
)
def trace(
    trace_id: str,
    run_dir: Path | None,
    bootstrap: str | None,
    as_json: bool,
    strict: bool,
) -> None:
    """Reconstruct TRACE_ID: decision → risk verdict → orders → fills → positions."""
    from grodt.core.errors import GrodtError
    from grodt.forensics.reader import consume
    from grodt.forensics.reader import read_run
    from grodt.forensics.trace import build_trace
    from grodt.forensics.trace import render_trace

    if run_dir is not None:
        stored = read_run(run_dir, trace_id=trace_id)
        where = str(run_dir)
    else:
        servers = _bootstrap(bootstrap)
        if not servers:
            raise GrodtError("give --run DIR (or --bootstrap HOST:PORT to scan Kafka)")
        stored = [s for s in consume(servers, _topics(())) if s.record.trace_id == trace_id]
        stored.sort(key=lambda s: s.identity)
        where = servers
    if not stored:
        raise GrodtError(f"trace {trace_id!r}: no record in {where}")
    result = build_trace((s.record for s in stored), trace_id)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(render_trace(result))
    if strict and result.problems(require_verdicts=True):
        sys.exit(1)


@command.command(name="flush")
@click.argument(
    "outboxes",
    nargs=-1,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--bootstrap",
    default=None,
    help="Deliver to these bootstrap servers instead of the ones in the outbox's sink.json.",
)
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per outbox.")
def flush(outboxes: tuple[Path, ...], bootstrap: str | None, timeout: float) -> None:
    """Deliver records that ended runs left in a Kafka sink's shared outbox.

    OUTBOXES are outbox roots (default: every one under <GRODT_RUNS_DIR>/forensics/outbox). Records
    of live runs are left to them. Exits 1 when records are still left.
    """
    from grodt.core.settings import get_settings

    roots = list(outboxes)
    if not roots:
        parent = get_settings().runs_dir / "forensics" / "outbox"
        roots = sorted(p for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        if not roots:
            click.echo(f"nothing to flush: no outbox under {parent}")
            return
    left = 0
    for root in roots:
        left += _flush_one(root, bootstrap, timeout)
    if left:
        sys.exit(1)


def _flush_one(root: Path, bootstrap: str | None, timeout: float) -> int:
    """Deliver one outbox root; returns the records still left in it."""
    import logging

    from actors.forensics.pipeline import ForensicsPipeline
    from actors.forensics.pipeline import new_session_id
    from actors.forensics.shared_outbox import SINK_FILE
    from actors.forensics.shared_outbox import SharedOutbox
    from actors.forensics.sinks import KafkaSink
    from actors.forensics.sinks import resolve_client_config
    from grodt.core.errors import GrodtError

    log = logging.getLogger("grodt.forensics")
    shared = SharedOutbox(root, log)
    sink_file = shared.read_sink()
    if sink_file is None or sink_file.get("sink") != "kafka":
        raise GrodtError(f"{root}: not a forensics outbox (no Kafka {SINK_FILE} in it)")
    servers = bootstrap or sink_file["bootstrap_servers"]
    producer = resolve_client_config(
        dict(sink_file.get("producer") or {}),
        f"{root / SINK_FILE}: producer",
    )
    session = new_session_id()
    lease = shared.open_session(session)
    sink = KafkaSink(
        servers,
        list(sink_file["topics"]),
        producer_config=producer,
        create_topics=bool(sink_file.get("create_topics", True)),
        partitions=int(sink_file.get("partitions", 6)),
        replication_factor=int(sink_file.get("replication_factor", 1)),
        client_id="grodt-forensics-flush",
        log=log,
    )
    pipeline = ForensicsPipeline(
        sink,
        lease.path,
        session=session,
        dead_letters_path=root / "rejected.jsonl",
        log=log,
    )
    try:
        pipeline.start()
        stats = pipeline.close(timeout)
    finally:
        lease.close()
    waiting = shared.pending()
    line = f"{root}: delivered {stats.delivered:,} of {stats.recovered:,} records to {servers}"
    if stats.rejected:
        line += f", {stats.rejected:,} dead-lettered in {root / 'rejected.jsonl'}"
    click.echo(line + (f"; {waiting:,} still waiting" if waiting else ""))
    return waiting
