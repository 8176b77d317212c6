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
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from grodt.core.errors import GrodtError

__all__ = [
    "CHECKPOINT_KEY",
    "Checkpoint",
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
