"""Messages that components exchange on the Nautilus message bus.

These are the contracts between actors and strategies inside one node. They are Nautilus custom
data (``@customdataclass``), so the same records can be published live, written to the catalog and
replayed into a backtest without the actor that produced them.

Nautilus constraint: a module with ``@customdataclass`` must not use
``from __future__ import annotations``, and fields are scalars (no numpy arrays).
"""

from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import InstrumentId

REGIME_LABELS: tuple[str, ...] = ("bull", "bear", "sideways")
"""The regime labels, in the order used by every probability vector in grodt."""

NEUTRAL_REGIME_PROBABILITIES: dict[str, float] = dict.fromkeys(REGIME_LABELS, 1.0 / 3.0)
"""The prior used before the first regime record arrives."""


@customdataclass
class RegimeProbabilities(Data):
    """Filtered regime probabilities for one instrument at one bar, published by the regime actor.

    Probabilities are causal: p(regime_t | bars_1..t). They sum to 1 over ``REGIME_LABELS``.

    Attributes
    ----------
    instrument_id : InstrumentId
        The instrument whose bars were filtered.
    p_bull, p_bear, p_sideways : float
        Probabilities in [0, 1].
    most_likely : str
        The label with the highest probability.
    entropy : float
        Shannon entropy of the distribution in nats (0 = certain, ln 3 = uniform).
    model_version : str
        Version of the fitted model that produced the record ("prior" before the first fit).
    """

    instrument_id: InstrumentId = InstrumentId.from_str("NULL.NULL")
    p_bull: float = 1.0 / 3.0
    p_bear: float = 1.0 / 3.0
    p_sideways: float = 1.0 / 3.0
    most_likely: str = "sideways"
    entropy: float = 0.0
    model_version: str = "prior"

    def probabilities(self) -> dict[str, float]:
        """The probabilities keyed by label, in ``REGIME_LABELS`` order."""
        return {"bull": self.p_bull, "bear": self.p_bear, "sideways": self.p_sideways}


@customdataclass
class StrategyAllocation(Data):
    """Capital weight of one strategy, published by the meta-controller.

    Attributes
    ----------
    strategy_id : str
        The receiving strategy's id (e.g. ``"S1VwapEmaScalper-000"``).
    weight : float
        Fraction of account equity allocated to the strategy, in [0, 1].
    model_version : str
        Version of the performance model behind the decision ("static" for YAML weights).
    trace_id : str
        Forensics trace id of the allocation decision.
    """

    strategy_id: str = ""
    weight: float = 0.0
    model_version: str = "static"
    trace_id: str = ""


def regime_data_type(instrument_id: InstrumentId | str | None = None) -> DataType:
    """The DataType to publish/subscribe regime records (optionally for one instrument)."""
    metadata = {"instrument_id": str(instrument_id)} if instrument_id is not None else None
    return DataType(RegimeProbabilities, metadata=metadata)


def allocation_data_type() -> DataType:
    """The DataType to publish/subscribe strategy allocations."""
    return DataType(StrategyAllocation)
