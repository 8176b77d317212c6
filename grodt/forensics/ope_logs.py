"""Bandit rounds for off-policy evaluation, rebuilt from a run's allocation records.

A stochastic allocation policy (the meta-controller's ``bandit``) logs at every rebalance one
:class:`~grodt.core.records.AllocationRecord` with its input vector (``context``), the chosen
discrete allocation (``action_index``), the distribution it was drawn from
(``action_probabilities``) and its probability (``propensity``). The outcome of that choice
arrives with the *next* record: its ``realised_return`` is the portfolio's return over the window
since the previous rebalance, under the previous weights. So round ``k`` of a component is record
``k``'s (context, action, propensity) with record ``k + 1``'s ``realised_return`` as its reward;
the last record's choice has no outcome yet.

:func:`read_bandit_log` reads the records of one or more run directories (``read_run``, Parquet
and spill leftovers), pairs them per (run, component) in decision-time order, and returns the
rounds as arrays for :mod:`research.ope`. Records that are not a usable round (a fallback without
a propensity, a missing outcome) are counted by reason, never silently dropped; malformed ones
(a propensity that is not the probability of the chosen action, contexts with other names) are
errors naming the run, the record's trace id and the field. :func:`consume_bandit_log` reads the
same rounds from a Kafka topic. :func:`write_records` writes records
into a run's forensics folder with the bridge's own Parquet sink (for logs made outside a node:
simulations, tests).
"""

from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np

from actors.forensics.codec import record_envelope
from actors.forensics.config import TopicNames
from actors.forensics.sinks import ParquetSink
from grodt.core.errors import GrodtError
from grodt.core.records import AllocationRecord
from grodt.core.records import RecordBase
from grodt.core.records import record_to_json
from grodt.forensics.reader import consume
from grodt.forensics.reader import read_run

__all__ = [
    "BanditLog",
    "bandit_log_from_records",
    "consume_bandit_log",
    "read_bandit_log",
    "write_records",
]

_PSCORE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class BanditLog:
    """Logged rounds of a stochastic allocation policy.

    Attributes
    ----------
    context : np.ndarray
        (n, d) float, the policy's input at each decision.
    feature_names : tuple[str, ...]
        Names of ``context``'s columns (the records' ``context`` keys, sorted).
    action : np.ndarray
        (n,) int, ``action_index``.
    pscore : np.ndarray
        (n,) float, ``propensity``.
    logging_action_dist : np.ndarray
        (n, n_actions), ``action_probabilities``.
    reward : np.ndarray
        (n,) float, the next record's ``realised_return`` (fraction over the window).
    ts_event : np.ndarray
        (n,) int64 UNIX ns of each decision.
    trace_ids : tuple[str, ...]
    sources : tuple[str, ...]
        ``<run>:<component_id>`` of each round.
    skipped : dict[str, int]
        Records that are no round, by reason.
    """

    context: np.ndarray
    feature_names: tuple[str, ...]
    action: np.ndarray
    pscore: np.ndarray
    logging_action_dist: np.ndarray
    reward: np.ndarray
    ts_event: np.ndarray
    trace_ids: tuple[str, ...]
    sources: tuple[str, ...]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def n_rounds(self) -> int:
        return int(self.action.size)

    @property
    def n_actions(self) -> int:
        return int(self.logging_action_dist.shape[1])


def _where(source: str, record: AllocationRecord) -> str:
    return f"{source}: allocation record {record.trace_id or '(no trace id)'} at {record.ts_event}"


def _check_choice(record: AllocationRecord, where: str) -> None:
    probabilities = np.asarray(record.action_probabilities, dtype=float)
    index = record.action_index
    assert index is not None and record.propensity is not None
    if not 0 <= index < probabilities.size:
        raise GrodtError(
            f"{where}: action_index {index} outside action_probabilities "
            f"(length {probabilities.size})"
        )
    if not np.isfinite(probabilities).all() or (probabilities < 0).any():
        raise GrodtError(f"{where}: action_probabilities must be finite and >= 0")
    if abs(probabilities.sum() - 1.0) > 1e-6:
        raise GrodtError(f"{where}: action_probabilities sum to {probabilities.sum()!r}, not 1")
    if abs(probabilities[index] - record.propensity) > _PSCORE_TOLERANCE:
        raise GrodtError(
            f"{where}: propensity {record.propensity!r} is not action_probabilities[{index}] "
            f"= {probabilities[index]!r}"
        )
    if not 0.0 < record.propensity <= 1.0:
        raise GrodtError(f"{where}: propensity {record.propensity!r} outside (0, 1]")


def bandit_log_from_records(
    records: Iterable[tuple[str, AllocationRecord]],
) -> BanditLog:
    """Rounds from ``(source, record)`` pairs; records are paired per source and component.

    Raises
    ------
    GrodtError
        No usable round, or a malformed record (named by source, trace id and field).
    """
    streams: dict[tuple[str, str], list[AllocationRecord]] = {}
    for source, record in records:
        streams.setdefault((source, record.component_id), []).append(record)
    skipped: Counter[str] = Counter()
    rows: list[tuple[str, AllocationRecord, float]] = []
    for (source, component), stream in sorted(streams.items()):
        # Stable: records at one timestamp keep their stream order.
        stream.sort(key=lambda r: r.ts_event)
        label = f"{source}:{component}"
        for current, following in zip(stream, [*stream[1:], None], strict=True):
            if current.action_index is None or current.propensity is None:
                skipped[f"no propensity (policy {current.policy!r})"] += 1
                continue
            _check_choice(current, _where(label, current))
            if following is None:
                skipped["last decision (its outcome is not logged yet)"] += 1
                continue
            outcome = following.realised_return
            if outcome is None or not np.isfinite(outcome):
                skipped["next record has no finite realised_return"] += 1
                continue
            rows.append((label, current, float(outcome)))
    if not rows:
        reasons = ", ".join(f"{n} {why}" for why, n in skipped.items()) or "no allocation records"
        raise GrodtError(f"no bandit round with a propensity and an outcome ({reasons})")
    names = tuple(sorted(rows[0][1].context))
    n_actions = len(rows[0][1].action_probabilities)
    for label, record, _ in rows:
        if tuple(sorted(record.context)) != names:
            raise GrodtError(
                f"{_where(label, record)}: context has keys {sorted(record.context)}, the first "
                f"round {list(names)}"
            )
        if len(record.action_probabilities) != n_actions:
            raise GrodtError(
                f"{_where(label, record)}: {len(record.action_probabilities)} "
                f"action_probabilities, the first round {n_actions}"
            )
    return BanditLog(
        context=np.array([[r.context[k] for k in names] for _, r, _ in rows], dtype=float).reshape(
            len(rows), len(names)
        ),
        feature_names=names,
        action=np.array([r.action_index for _, r, _ in rows], dtype=np.int64),
        pscore=np.array([r.propensity for _, r, _ in rows], dtype=float),
        logging_action_dist=np.array([r.action_probabilities for _, r, _ in rows], dtype=float),
        reward=np.array([outcome for _, _, outcome in rows], dtype=float),
        ts_event=np.array([r.ts_event for _, r, _ in rows], dtype=np.int64),
        trace_ids=tuple(r.trace_id for _, r, _ in rows),
        sources=tuple(label for label, _, _ in rows),
        skipped=dict(skipped),
    )


def read_bandit_log(runs: Sequence[Path], component_id: str | None = None) -> BanditLog:
    """The bandit rounds of the allocation records of ``runs`` (optionally one component's)."""
    topic = TopicNames().allocations
    pairs: list[tuple[str, AllocationRecord]] = []
    for run in runs:
        for stored in read_run(Path(run), topics=[topic]):
            record = stored.record
            if not isinstance(record, AllocationRecord):
                continue
            if component_id is not None and record.component_id != component_id:
                continue
            pairs.append((str(run), record))
    if not pairs:
        which = f" of component {component_id!r}" if component_id else ""
        raise GrodtError(
            f"no allocation records{which} in {', '.join(str(r) for r in runs)} (topic {topic})"
        )
    return bandit_log_from_records(pairs)


def consume_bandit_log(
    bootstrap_servers: str,
    topic: str | None = None,
    component_id: str | None = None,
    idle_timeout_s: float = 3.0,
    client_config: dict | None = None,
) -> BanditLog:
    """The bandit rounds of the allocation records on a Kafka topic (read from the beginning
    until ``idle_timeout_s`` passes without a new record; duplicates dropped)."""
    topic = topic or TopicNames().allocations
    source = f"kafka:{bootstrap_servers}/{topic}"
    pairs = [
        (source, stored.record)
        for stored in consume(
            bootstrap_servers,
            topics=[topic],
            idle_timeout_s=idle_timeout_s,
            client_config=client_config,
        )
        if isinstance(stored.record, AllocationRecord)
        and (component_id is None or stored.record.component_id == component_id)
    ]
    if not pairs:
        which = f" of component {component_id!r}" if component_id else ""
        raise GrodtError(f"no allocation records{which} on {source}")
    return bandit_log_from_records(pairs)


def write_records(run: Path, records: Sequence[RecordBase], session: str) -> list[Path]:
    """Write ``records`` to ``<run>/forensics`` as the bridge's Parquet sink does (one session,
    seq from 1, each record on its default topic). Returns the files written."""
    topics = TopicNames()
    by_type = {
        "decision": topics.decisions,
        "risk_verdict": topics.risk,
        "allocation": topics.allocations,
        "regime_update": topics.regime,
    }
    failures: list[str] = []
    sink = ParquetSink(Path(run) / "forensics", session)
    sink.bind(lambda envelope: None, lambda envelope, error, permanent: failures.append(error))
    sink.open()
    for seq, record in enumerate(records, start=1):
        topic = by_type.get(record.record_type)
        if topic is None:
            raise GrodtError(f"write_records: no default topic for {record.record_type} records")
        sink.send(record_envelope(record, session, seq, topic, record_to_json(record)))
    sink.close()
    if failures:
        raise GrodtError(f"write_records: {len(failures)} records not written: {failures[0]}")
    return list(sink.files)
