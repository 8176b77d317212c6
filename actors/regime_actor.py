"""The regime actor: causal HMM regime probabilities for every bar, published to all strategies.

For each configured bar type the actor runs a :class:`~models.regime.WalkForwardRegime` — causal
features, one forward-filter step per bar, periodic refits on a trailing window — and publishes a
:class:`~grodt.core.messages.RegimeProbabilities` record per bar with
``publish_data(regime_data_type(instrument_id), record)`` (``ts_event``/``ts_init`` of the bar).
Strategies subscribe to that data type and blend their behaviour with the probabilities.

On a (re)fit, a failed fit and a change of the most likely label (not every bar) it also
publishes a :class:`~grodt.core.records.RegimeUpdateRecord` on
:data:`~grodt.core.topics.Topics.REGIME`
for decision forensics.

With ``walk_forward.refit_lag_bars`` > 0 the (re)fits run in a worker process (``fit_workers``,
spawned at start) and each new model takes over that many rows after its window ends, at the same
bar in a backtest and live (:mod:`models.regime.walk_forward`); the engine thread only starts the
fit and, at the swap, replays those rows on the new filter. A fit still running at its swap row
is waited for (counted as ``refit_waits``), so the records are the same whether the fits ran in
the worker or, with ``fit_workers: 0``, on the engine thread. With ``refit_lag_bars`` 0
(default) fits run on the engine thread at the bar their window ends.

The actor does not know whether it runs in a backtest or live: it only sees bars. Actors start
before strategies, so a strategy's ``on_bar(t)`` always sees the record of bar t first. The same
records can be computed offline (``grodt regime infer --to-catalog``) and replayed into a
backtest without the actor; see ``docs/regime.md``.
"""

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from dataclasses import replace
from pathlib import Path

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import InstrumentId

from actors.regime_monitors import RegimeMonitors
from actors.regime_monitors import RegimeMonitorsConfig
from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.core.messages import NEUTRAL_REGIME_PROBABILITIES
from grodt.core.messages import REGIME_LABELS
from grodt.core.messages import RegimeProbabilities
from grodt.core.messages import regime_data_type
from grodt.core.records import RegimeUpdateRecord
from grodt.core.records import make_trace_id
from grodt.core.topics import MODEL_CONTROL_TOPIC
from grodt.core.topics import Topics
from models.lifecycle.refit import fit_worker_pool
from models.regime.hmm import GaussianRegimeHMM
from models.regime.walk_forward import RegimeStep
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import WalkForwardRegime
from models.regime.walk_forward import entropy_nats
from models.regime.walk_forward import most_likely_label
from models.regime.walk_forward import worker_ready
from node_configs.model_refs import is_registry_reference
from node_configs.model_refs import resolve_model_file


class RegimeActorConfig(ActorConfig, frozen=True):
    """Configuration for :class:`RegimeActor`.

    Parameters
    ----------
    bar_types : list[BarType]
        The bars to filter, one bar type per instrument; records are published per instrument.
    walk_forward : WalkForwardConfig
        The regime model and its refit schedule, one mapping in YAML: features, the HMM's
        hyperparameters (``n_states``, ``covariance_type``, ``temperature``, …), ``train_bars``,
        ``min_train_bars``, ``refit_every`` and ``warm_start``; every field and default is
        documented on :class:`~models.regime.walk_forward.WalkForwardConfig`. A window too short
        for the model is an error when the config is loaded.
    model : str, optional
        The model to start with (used from the first bar after the features' warm-up; it must
        have the configured features): a file saved by ``grodt regime fit``, or a registry
        reference, ``regime_hmm@champion`` or ``regime_hmm/7`` (:mod:`node_configs.model_refs`:
        an alias is pinned to its version when the node config is loaded, and records cite
        ``regime_hmm/7:<content hash>`` while that model is in use).
    shadow_model : str, optional
        A challenger to run beside the model in shadow mode (a file or a registry reference,
        like ``model``): it is filtered on every bar with the same features, never refitted,
        and only logged — ``RegimeUpdateRecord``s from component ``<actor id>.shadow`` (reason
        prefixed ``shadow:``) on its fits and label changes, and its agreement with the traded
        model in :meth:`RegimeActor.summary`. Strategies never see it: it trades nothing.
    monitors : RegimeMonitorsConfig, optional
        Change-point and drift monitors per bar type, with thresholds that can ask for a retrain
        or a fallback to the neutral prior until the next fit (:mod:`actors.regime_monitors`).
    model_dir : str, optional
        Write every model the actor fits to ``<model_dir>/<instrument_id>/<version>.json``.
    publish_updates : bool, default True
        Publish ``RegimeUpdateRecord`` forensics records on refits and label changes.
    control_fallback_bars : int, optional
        How many bars a fallback asked for on ``MODEL_CONTROL_TOPIC`` (a strategy monitor's
        ``fallback``) lasts at most, counted per bar type from the bar that takes the request;
        the next fit ends it sooner. None (default): until the next fit. The fallback and its
        count are in the actor's saved state, so a restarted node keeps it.
    fit_workers : int, default 1
        Worker processes for the (re)fits when ``walk_forward.refit_lag_bars`` > 0; the bar
        types' fits due at the same bar queue for them (one worker: one after another, leaving
        the other core to the engine thread). 0: the fits run on the engine thread, and their
        models still take over ``refit_lag_bars`` rows later (the same records as with workers).
    """

    bar_types: list[BarType]
    walk_forward: WalkForwardConfig = msgspec.field(default_factory=WalkForwardConfig)
    model: str | None = None
    shadow_model: str | None = None
    monitors: RegimeMonitorsConfig | None = None
    model_dir: str | None = None
    publish_updates: bool = True
    control_fallback_bars: int | None = None
    fit_workers: int = 1

    def __post_init__(self) -> None:
        if self.fit_workers < 0:
            raise ValueError(f"fit_workers: must be >= 0, was {self.fit_workers}")
        if self.control_fallback_bars is not None and self.control_fallback_bars < 1:
            raise ValueError(
                f"control_fallback_bars: must be >= 1 bars, was {self.control_fallback_bars}",
            )
        if not self.bar_types:
            raise ValueError("bar_types: at least one bar type is required")
        instruments = [str(bt.instrument_id) for bt in self.bar_types]
        duplicates = sorted({i for i in instruments if instruments.count(i) > 1})
        if duplicates:
            raise ValueError(
                f"bar_types: one bar type per instrument (records are keyed by instrument); "
                f"{duplicates} appear more than once",
            )
        for name, value in (("model", self.model), ("shadow_model", self.shadow_model)):
            if value is None or is_registry_reference(value):
                continue
            if not Path(value).is_file():
                raise ValueError(
                    f"{name}: {value} is neither a model file nor a registry reference "
                    "('name@alias' or 'name/<version>')",
                )
            # Read it now: a corrupt model must fail when the config loads, not at actor start.
            try:
                GaussianRegimeHMM.load(value)
            except ConfigError as e:
                raise ConfigError(f"{name}: {e}") from None


def _fallback_step(step: RegimeStep) -> RegimeStep:
    """The neutral prior in place of ``step`` (a drift monitor's fallback)."""
    neutral = tuple(NEUTRAL_REGIME_PROBABILITIES[label] for label in REGIME_LABELS)
    return step._replace(
        probabilities=neutral,
        most_likely=most_likely_label(neutral),
        entropy=entropy_nats(neutral),
        model_version=f"fallback:{step.model_version}",
    )


class _Lane:
    """What :meth:`RegimeActor.on_bar` needs of one bar type, behind one dict lookup: a
    ``BarType`` key is hashed from its string at every lookup (~0.5 µs), and ``bar.bar_type``
    builds a new object each time."""

    __slots__ = ("data_type", "instrument_id", "monitors", "regime", "shadow")

    def __init__(
        self,
        regime: WalkForwardRegime,
        instrument_id: InstrumentId,
        data_type: DataType,
        monitors: RegimeMonitors | None,
        shadow: WalkForwardRegime | None,
    ) -> None:
        self.regime = regime
        self.instrument_id = instrument_id
        self.data_type = data_type
        self.monitors = monitors
        self.shadow = shadow


_RECORD_FIELDS = (
    "instrument_id",
    "p_bull",
    "p_bear",
    "p_sideways",
    "most_likely",
    "entropy",
    "model_version",
)
"""The leading fields of ``RegimeProbabilities`` in declaration order, which
:meth:`RegimeActor.on_bar` passes positionally (checked at import: a reordered contract fails
loudly here)."""
if tuple(f.name for f in fields(RegimeProbabilities))[: len(_RECORD_FIELDS)] != _RECORD_FIELDS:
    raise ImportError(
        f"RegimeProbabilities no longer starts with the fields {_RECORD_FIELDS}: update "
        "RegimeActor.on_bar, which passes them positionally",
    )

_STATE_SEQUENCE = "grodt.regime_sequence"
"""Key of the saved record sequence (:meth:`RegimeActor.on_save`)."""
_STATE_CONTROL = "grodt.regime_control_fallback"
"""Key of the saved control fallback: JSON ``{"reason": str, "bars": {bar type: bars in}}``."""


class RegimeActor(Actor):
    """Publishes causal regime probabilities for every bar of the configured bar types."""

    def __init__(self, config: RegimeActorConfig) -> None:
        super().__init__(config)
        self.walk_forward = config.walk_forward
        self.filters: dict[BarType, WalkForwardRegime] = {}
        """The walk-forward filter of each bar type (models, fits and counters)."""
        self._data_types: dict[BarType, DataType] = {}
        self._instrument_ids: dict[BarType, InstrumentId] = {}
        self._lanes: dict[BarType, _Lane] = {}
        self._saved_versions: set[str] = set()
        self._sequence = 0
        self._registry_refs: dict[str, str] = {}
        """Content hash → ``name/<version>`` of the registry models loaded (cited in records)."""
        self._fit_pool: ProcessPoolExecutor | None = None
        self.shadows: dict[BarType, WalkForwardRegime] = {}
        """The shadow challenger's filter of each bar type (``shadow_model``)."""
        self._shadow_agreement: dict[BarType, list[int]] = {}
        self.monitors: dict[BarType, RegimeMonitors] = {}
        """The change-point / drift monitors of each bar type (``monitors``)."""
        self._control_fallback: dict[BarType, int] = {}
        """Bar types publishing the neutral prior until their next fit (or
        ``control_fallback_bars``), as a monitor on ``MODEL_CONTROL_TOPIC`` asked
        (``actors.strategy_monitor``): the bars each has published it for so far."""
        self._control_reason = ""
        """Why the control fallback is in force (``from <source>: <reason>``)."""

    def on_start(self) -> None:
        starting_model = self._starting_model(self.config.model)
        shadow_model = self._starting_model(self.config.shadow_model)
        workers = self.config.fit_workers
        if self.walk_forward.refit_lag_bars > 0 and workers > 0 and self._fit_pool is None:
            self._fit_pool = fit_worker_pool(workers)
            # Start the workers (interpreter, numpy, hmmlearn) now, not under the first fit;
            # not waited for.
            for _ in range(workers):
                self._fit_pool.submit(worker_ready)
        for bar_type in self.config.bar_types:
            instrument_id = bar_type.instrument_id
            self.filters[bar_type] = WalkForwardRegime(
                self.walk_forward,
                model=starting_model,
                on_warning=self._warn,
                on_info=self.log.info,
                executor=self._fit_pool,
            )
            if shadow_model is not None:
                self.shadows[bar_type] = WalkForwardRegime(
                    replace(self.walk_forward, refit_every=0, refit_lag_bars=0),
                    model=shadow_model,
                    on_warning=self._warn,
                    on_info=self.log.info,
                )
                self._shadow_agreement[bar_type] = [0, 0]
            if self.config.monitors is not None:
                names = [str(spec) for spec in self.filters[bar_type].extractor.specs]
                self.monitors[bar_type] = RegimeMonitors(self.config.monitors, names)
            self._data_types[bar_type] = regime_data_type(instrument_id)
            self._instrument_ids[bar_type] = instrument_id
            self._lanes[bar_type] = _Lane(
                self.filters[bar_type],
                instrument_id,
                self._data_types[bar_type],
                self.monitors.get(bar_type),
                self.shadows.get(bar_type),
            )
            self.subscribe_bars(bar_type)
        self.msgbus.subscribe(topic=MODEL_CONTROL_TOPIC, handler=self._on_model_control)

    def _on_model_control(self, message: object) -> None:
        """A monitor asks for a ``retrain`` (a refit at each bar type's next row) or a
        ``fallback`` (the neutral prior until each bar type's next fit)."""
        if not isinstance(message, dict):
            return
        action = message.get("action")
        detail = f"from {message.get('source', '?')}: {message.get('reason', '')}"
        if action == "retrain":
            accepted = [(str(bt), r) for bt, r in self.filters.items() if r.request_refit()]
            due = [bt for bt, r in accepted if not r.refitter.queued]
            queued = [bt for bt, r in accepted if r.refitter.queued]
            self.log.warning(
                f"regime retrain requested {detail}; refit due for {due}"
                + (f", queued behind the fit in flight for {queued}" if queued else "")
            )
        elif action == "fallback":
            self._control_fallback = dict.fromkeys(self.filters, 0)
            self._control_reason = detail
            limit = self.config.control_fallback_bars
            until = "the next fit" + (f" or {limit} bars" if limit is not None else "")
            self.log.warning(f"regime fallback requested {detail}; prior until {until}")

    def _starting_model(self, reference: str | None) -> GaussianRegimeHMM | None:
        """A configured model (``model`` or ``shadow_model``); a registry model that cannot be
        had (store down and no cached copy, corrupt download) is logged as an error and left
        out: the actor then runs from the prior and its walk-forward fits (no shadow)."""
        if reference is None:
            return None
        try:
            source = resolve_model_file(reference)
            model = GaussianRegimeHMM.load(source.path)
        except (GrodtError, OSError) as e:
            self.log.error(f"Regime model {reference} not loaded ({e}); left out")
            return None
        cited = model.version_
        if source.reference is not None:
            self._registry_refs[model.version_] = source.reference
            cited = self._cite(model.version_)
        self.log.info(f"Starting from regime model {cited} ({source.path})")
        return model

    def _cite(self, model_version: str) -> str:
        """The version records carry: ``regime_hmm/7:hmm-…`` for a registry model, else the
        model's content hash (or ``prior``)."""
        reference = self._registry_refs.get(model_version)
        return f"{reference}:{model_version}" if reference else model_version

    def on_historical_data(self, data: object) -> None:
        """A bar from before this run of the actor (a restarted node's warm-up,
        :mod:`grodt.nodes.warm_up`): the filter steps (fits and refits included) as in
        :meth:`on_bar`, and so do the monitors (their windows, alarms, requested retrains and
        fallback), so the state equals the crashed actor's; nothing is published or saved (the
        strategies' regime inputs come back with their own saved state)."""
        if not isinstance(data, Bar):
            return
        regime = self.filters.get(data.bar_type)
        if regime is not None:
            monitors = self.monitors.get(data.bar_type)
            watching = monitors is not None and monitors.watches_model
            model_before = regime.model if watching else None
            state_before = regime.state if watching else None
            step = regime.update(data.close.as_double(), data.ts_event)
            if monitors is not None:
                if monitors.fallback and ("fit" in step.events or "refit" in step.events):
                    monitors.fallback = False
                self._monitor_step(
                    data,
                    self._instrument_ids[data.bar_type],
                    regime,
                    monitors,
                    step,
                    model_before,
                    state_before,
                    publish=False,
                )
        shadow = self.shadows.get(data.bar_type)
        if shadow is not None:
            shadow.update(data.close.as_double(), data.ts_event)

    def on_save(self) -> dict[str, bytes]:
        """The regime update records' sequence (their trace ids continue after a restart) and a
        control fallback in force with its bar counts (a restarted node keeps it; the filters
        and monitors are rebuilt from the warm-up bars)."""
        state = {_STATE_SEQUENCE: str(self._sequence).encode()}
        if self._control_fallback:
            control = {
                "reason": self._control_reason,
                "bars": {str(bt): bars for bt, bars in self._control_fallback.items()},
            }
            state[_STATE_CONTROL] = json.dumps(control).encode()
        return state

    def on_load(self, state: dict[str, bytes]) -> None:
        if _STATE_SEQUENCE in state:
            self._sequence = int(state[_STATE_SEQUENCE].decode())
        if _STATE_CONTROL not in state:
            return
        try:
            control = json.loads(state[_STATE_CONTROL].decode())
            reason = str(control["reason"])
            counts = {str(k): int(v) for k, v in control["bars"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:  # start without it
            self.log.error(f"Saved regime fallback not loaded ({type(e).__name__}: {e})")
            return
        configured = {str(bt): bt for bt in self.config.bar_types}
        unknown = sorted(set(counts) - set(configured))
        if unknown:
            self.log.warning(f"Saved regime fallback of unconfigured bar types ignored: {unknown}")
        self._control_fallback = {configured[k]: n for k, n in counts.items() if k in configured}
        self._control_reason = reason
        restored = {str(bt): n for bt, n in self._control_fallback.items()}
        self.log.warning(f"Restored regime fallback {reason} (bars in: {restored})")

    def on_bar(self, bar: Bar) -> None:
        lane = self._lanes.get(bar.bar_type)
        if lane is None:
            return
        regime = lane.regime
        monitors = lane.monitors
        watching = monitors is not None and monitors.watches_model
        model_before = regime.model if watching else None
        state_before = regime.state if watching else None
        step = regime.update(bar.close.as_double(), bar.ts_event)
        instrument_id = lane.instrument_id
        published = step
        controlled = None
        if self._control_fallback:
            bar_type = bar.bar_type
            controlled = self._control_fallback.get(bar_type)
            if controlled is not None:
                controlled = self._count_control_bar(bar_type, controlled, step)
        if controlled is not None or (monitors is not None and monitors.fallback):
            if "fit" in step.events or "refit" in step.events:
                if monitors is not None:
                    monitors.fallback = False
            else:
                published = _fallback_step(step)
        # Positional (ts_event, ts_init, then the fields in order: _RECORD_FIELDS): the
        # customdataclass __init__ takes keywords through two **kwargs hops, 2.5x the cost.
        record = RegimeProbabilities(
            bar.ts_event,
            bar.ts_init,
            instrument_id,
            *published.probabilities,
            published.most_likely,
            published.entropy,
            self._cite(published.model_version),
        )
        self.publish_data(lane.data_type, record)
        if step.events:
            self._on_events(bar, instrument_id, regime, step)
        shadow = lane.shadow
        if shadow is not None:
            self._shadow_step(bar, instrument_id, shadow, step)
        if monitors is not None:
            self._monitor_step(
                bar, instrument_id, regime, monitors, step, model_before, state_before
            )

    def _count_control_bar(self, bar_type: BarType, bars: int, step: RegimeStep) -> int | None:
        """One more bar of the control fallback of ``bar_type`` (``bars`` so far); None when it
        ends at this bar: a (re)fit at it, or ``control_fallback_bars`` already published."""
        limit = self.config.control_fallback_bars
        if "fit" in step.events or "refit" in step.events:
            why = f"a {step.events[0]} at this bar"
        elif limit is not None and bars >= limit:
            why = f"{limit} bars passed"
        else:
            self._control_fallback[bar_type] = bars + 1
            return bars + 1
        del self._control_fallback[bar_type]
        self.log.warning(f"regime fallback ({self._control_reason}) ends for {bar_type}: {why}")
        if not self._control_fallback:
            self._control_reason = ""
        return None

    def _monitor_step(
        self,
        bar: Bar,
        instrument_id: InstrumentId,
        regime: WalkForwardRegime,
        monitors: RegimeMonitors,
        step: RegimeStep,
        model_before: GaussianRegimeHMM | None = None,
        state_before: list[float] | None = None,
        publish: bool = True,
    ) -> None:
        """Run the monitors on this bar; a crossed threshold is a forensics record (unless
        ``publish`` is False: a warm-up bar) and may ask for a retrain (from the next row) or
        the fallback (from the next bar)."""
        close = bar.close.as_double()
        try:
            events = monitors.update(close, regime.last_row, regime.training_rows)
            events += monitors.observe_coverage(
                model_before,
                state_before,
                regime.last_row,
                step.status == "filtered" and regime.model is model_before,
            )
            events += monitors.observe_regime(
                close, step.probabilities if step.status != "prior" else None
            )
        except Exception as e:  # a monitor must never stop the model
            self.log.error(f"regime monitors failed at {bar.ts_event}: {e!r}; monitors off")
            self.monitors.pop(bar.bar_type, None)
            self._lanes[bar.bar_type].monitors = None
            return
        for event in events:
            action = event.action
            if action == "retrain" and not regime.request_refit():
                action = "retrain_deferred"
            elif action == "fallback":
                monitors.fallback = True
            if not publish:
                continue
            self.log.warning(f"regime monitor {event.kind} at {bar.ts_event}: {event.detail}")
            if self.config.publish_updates:
                self._publish_update(
                    bar,
                    instrument_id,
                    step,
                    str(self.id),
                    f"{event.kind}:{event.detail},action={action}",
                )

    def _shadow_step(
        self,
        bar: Bar,
        instrument_id: InstrumentId,
        shadow: WalkForwardRegime,
        step: RegimeStep,
    ) -> None:
        """Filter the bar with the shadow challenger; record, never publish to strategies."""
        try:
            shadow_step = shadow.update(bar.close.as_double(), bar.ts_event)
        except Exception as e:  # the challenger must never stop the traded model
            self.log.error(f"shadow regime model failed at {bar.ts_event}: {e!r}; shadow off")
            self.shadows.pop(bar.bar_type, None)
            self._lanes[bar.bar_type].shadow = None
            return
        counts = self._shadow_agreement[bar.bar_type]
        if step.status != "prior" and shadow_step.status != "prior":
            counts[0] += int(shadow_step.most_likely == step.most_likely)
            counts[1] += 1
        if shadow_step.events and self.config.publish_updates:
            self._publish_update(
                bar,
                instrument_id,
                shadow_step,
                component_id=f"{self.id}.shadow",
                reason="shadow:" + ",".join(shadow_step.events),
            )

    def _on_events(
        self,
        bar: Bar,
        instrument_id: InstrumentId,
        regime: WalkForwardRegime,
        step: RegimeStep,
    ) -> None:
        if self.config.model_dir is not None and ("fit" in step.events or "refit" in step.events):
            self._save_model(instrument_id, regime)
        if not self.config.publish_updates:
            return
        self._publish_update(bar, instrument_id, step, str(self.id), ",".join(step.events))

    def _publish_update(
        self,
        bar: Bar,
        instrument_id: InstrumentId,
        step: RegimeStep,
        component_id: str,
        reason: str,
    ) -> None:
        self._sequence += 1
        update = RegimeUpdateRecord(
            trace_id=make_trace_id(component_id, bar.ts_event, self._sequence),
            ts_event=bar.ts_event,
            ts_init=self.clock.timestamp_ns(),
            component_id=component_id,
            model_versions={"regime": self._cite(step.model_version)},
            instrument_id=str(instrument_id),
            probabilities=step.as_dict(),
            most_likely=step.most_likely,
            entropy=step.entropy,
            reason=reason,
        )
        self.msgbus.publish(Topics.REGIME, update)

    def _save_model(self, instrument_id: InstrumentId, regime: WalkForwardRegime) -> None:
        model = regime.model
        if model is None or model.version_ in self._saved_versions:
            return
        path = Path(str(self.config.model_dir)) / str(instrument_id) / f"{model.version_}.json"
        try:
            model.save(path)
        except OSError as e:
            self.log.error(f"Could not save regime model {model.version_} to {path}: {e}")
            return
        self._saved_versions.add(model.version_)

    def _warn(self, message: str) -> None:
        self.log.warning(message)

    def on_stop(self) -> None:
        for bar_type in self.config.bar_types:
            self.unsubscribe_bars(bar_type)
        if self.msgbus.is_subscribed(MODEL_CONTROL_TOPIC, self._on_model_control):
            self.msgbus.unsubscribe(topic=MODEL_CONTROL_TOPIC, handler=self._on_model_control)
        for bar_type, regime in self.filters.items():
            self.log.info(
                f"{bar_type}: {regime.bars} bars, {len(regime.fits)} fits, "
                f"{regime.failed_fits} failed fits, {regime.skipped} skipped updates, "
                f"model {regime.version}",
            )

    def on_reset(self) -> None:
        for regime in (*self.filters.values(), *self.shadows.values()):
            regime.reset()
        for counts in self._shadow_agreement.values():
            counts[:] = [0, 0]
        self._control_fallback = {}
        self._control_reason = ""

    def on_dispose(self) -> None:
        for regime in self.filters.values():
            regime.refitter.close()
        if self._fit_pool is not None:
            # A fit still running belongs to a stopped node: drop it, do not wait for it.
            self._fit_pool.shutdown(wait=False, cancel_futures=True)
            self._fit_pool = None

    def _shadow_summary(self, bar_type: BarType) -> dict[str, object]:
        counts = self._shadow_agreement.get(bar_type)
        if counts is None:
            return {}
        shadow = self.shadows.get(bar_type)
        return {
            "shadow_model_version": self._cite(shadow.version) if shadow else "failed",
            "shadow_bars_compared": counts[1],
            "shadow_agreement": counts[0] / counts[1] if counts[1] else float("nan"),
        }

    def health(self) -> dict[str, dict[str, object]]:
        """Per bar type, for the live node's health line: the model version in use, fits,
        ``refit_waits`` (fits the engine thread had to wait for at their swap row), and
        the monitors' latest values (``changepoint_p``, ``drift_psi_max``, ``drift_feature``,
        ``fallback``, ``monitor_events``) when ``monitors`` is configured."""
        return {
            str(bar_type): {
                "model_version": self._cite(regime.version),
                "fits": len(regime.fits),
                "failed_fits": regime.failed_fits,
                "refit_waits": regime.fit_waits,
                "control_fallback": bar_type in self._control_fallback,
                "control_fallback_bars": self._control_fallback.get(bar_type, 0),
                **(self.monitors[bar_type].health() if bar_type in self.monitors else {}),
            }
            for bar_type, regime in self.filters.items()
        }

    def summary(self) -> dict[str, dict[str, object]]:
        """Counters per bar type: bars, fits, failed fits, skipped updates, current version, the
        fits' seconds, and the engine thread's waits for fits still running at their swap row
        (``refit_waits``, ``fit_wait_seconds``)."""
        return {
            str(bar_type): {
                "bars": regime.bars,
                "fits": len(regime.fits),
                "failed_fits": regime.failed_fits,
                "skipped": regime.skipped,
                "model_version": self._cite(regime.version),
                "fit_seconds": sum(f.seconds for f in regime.fits),
                "fit_wait_seconds": regime.fit_wait_seconds,
                "refit_waits": regime.fit_waits,
                **self._shadow_summary(bar_type),
                **(self.monitors[bar_type].health() if bar_type in self.monitors else {}),
            }
            for bar_type, regime in self.filters.items()
        }
