"""Crash checkpoints of a live node with a cache database: where a restarted node resumes.

Nautilus saves strategy and actor state (``on_save``) only at a graceful stop; a node killed with
SIGKILL would restart from its last *graceful* stop. The live node therefore checkpoints while
it runs: :func:`save_checkpoint` asks the trader to save every strategy's and actor's state into
the cache database, then writes :data:`CHECKPOINT_KEY` (the replay position) into the same
database. A paper node's database
(:class:`grodt.nodes.cache_transactions.TransactionalCacheDatabase`) then commits the states, the
checkpoint and every cache change since the previous checkpoint in one Redis transaction, so a
checkpoint found at restart comes with exactly the orders, positions, accounts and states of its
moment. In lockstep replay it runs after every record, once the engines are idle (a quiescent
point: every order that record caused is in the cache), and the commit is in Redis before the
next record; otherwise every ``cache_database.checkpoint_seconds``.
"""

import json
from collections.abc import Collection
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from grodt.core.errors import GrodtError

__all__ = [
    "CHECKPOINT_KEY",
    "HALTS_KEY",
    "Checkpoint",
    "SavedHalts",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_KEY = "grodt.checkpoint"
"""Key of the checkpoint in Nautilus' general cache (persisted by the cache database)."""


@dataclass(frozen=True)
class Checkpoint:
    """Where the node stood at its last checkpoint.

    Attributes
    ----------
    replayed : int
        Replay records dispatched and handled (0 for a node without replay): the restarted
        replay starts at this index.
    market_ts : int
        ``ts_init`` of the last of them, UNIX ns (0 without replay): checked against the catalog
        at resume, so a changed catalog or config is an error, not a silent skip.
    saved_ns : int
        Wall clock at the checkpoint, UNIX ns.
    """

    replayed: int
    market_ts: int
    saved_ns: int


def save_checkpoint(kernel: Any, checkpoint: Checkpoint) -> None:
    """Save every strategy's and actor's state, then the checkpoint, into the cache database."""
    kernel.trader.save()
    kernel.cache.add(CHECKPOINT_KEY, json.dumps(asdict(checkpoint)).encode())


def load_checkpoint(cache: Any) -> Checkpoint | None:
    """The checkpoint the cache loaded from its database at build, or None (a first start)."""
    raw = cache.get(CHECKPOINT_KEY)
    if raw is None:
        return None
    try:
        document = json.loads(bytes(raw).decode())
        return Checkpoint(
            replayed=int(document["replayed"]),
            market_ts=int(document["market_ts"]),
            saved_ns=int(document["saved_ns"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise GrodtError(
            f"cache database: checkpoint {CHECKPOINT_KEY!r} is unreadable ({e}); "
            "delete the key (or the database) to start afresh",
        ) from e


HALTS_KEY = "grodt.kill_switch.halts"
"""Key of the kill switch's active halts in Nautilus' general cache."""


class SavedHalts:
    """The kill switch's active halts across a crash.

    Saved into the cache database at each checkpoint when they changed (in that checkpoint's
    transaction) and applied again by a restarted node before its strategies start
    (:meth:`KillSwitch.restore`): a loss halt stays on, as in the uninterrupted run, instead of
    tripping again only if the loss still stands at the next equity check (a daily-loss halt
    without auto reset would never trip again after a restart on a later day). Halts of the
    ``transient`` sources are neither saved nor restored: the operator's kill file is its own
    record (level-triggered, checked at start), the node's stop-time halt ends with the node.

    Parameters
    ----------
    cache : Cache
        The node's cache (with a database).
    switch : KillSwitch
        The kernel's kill switch.
    transient : Collection[str]
        Sources whose halts are not kept.
    """

    def __init__(self, cache: Any, switch: Any, transient: Collection[str]) -> None:
        self._cache = cache
        self._switch = switch
        self._transient = frozenset(transient)
        self._saved: bytes | None = None
        self.restored = 0

    def _kept(self) -> list[tuple[str, str, str]]:
        return [h for h in self._switch.active() if h[1] not in self._transient]

    def save(self) -> None:
        """Write the active halts if they changed since the last save."""
        value = json.dumps(self._kept()).encode()
        if value != self._saved:
            self._cache.add(HALTS_KEY, value)
            self._saved = value

    def restore(self) -> int:
        """Apply the saved halts (a restarted node); returns how many."""
        raw = self._cache.get(HALTS_KEY)
        if raw is None:
            return 0
        self._saved = bytes(raw)
        try:
            halts = [
                (str(code), str(source), str(reason))
                for code, source, reason in json.loads(self._saved.decode())
            ]
        except (ValueError, TypeError) as e:
            raise GrodtError(
                f"cache database: {HALTS_KEY!r} is unreadable ({e}); delete the key to start "
                "without the crashed node's halts",
            ) from e
        halts = [h for h in halts if h[1] not in self._transient]
        self._switch.restore(halts)
        self.restored = len(halts)
        return self.restored
