"""The live data engine's queue consumed so that the commands a record caused leave first.

Nautilus 1.221's ``LiveDataEngine`` handles its data queue in one task, ``await queue.get()``
then ``_handle_data``. ``get()`` on a non-empty ``asyncio.Queue`` returns without yielding to
the event loop, and the risk and execution engines hand a command on through queues of their
own (``call_soon_threadsafe`` → ``put_nowait`` → their task). So when several records are
queued at once (a feed delivering three instruments' bars of the same minute, an accelerated
replay) the data task handles every one of them before the risk engine's task runs: an order a
strategy submits on instrument A's bar waits in the risk engine's queue until instrument B's
and C's bars have gone through every subscriber (measured in the accelerated paper node:
``docs/live.md``, "Bar → order: what the span holds").

:class:`CommandsFirstDataQueue` replaces the engine's data-queue coroutine with one that, after
each record, lets the event loop turn until the command path is quiet: the risk and execution
engines' command queues empty and their command counters unmoved for ``quiet_turns``
consecutive turns (bounded by ``max_turns``). The commands a record caused (orders, modifies,
cancels, through the risk engine, the portfolio risk gate and the execution engine to the
execution client) then leave before the next record is handled. It applies to every data
client alike. A lockstep replay already waits for idle engines after each record, so its
order of events is unchanged (``grodt parity`` guards it); without queued records the wait
costs ``quiet_turns`` loop turns per record.

It is installed on the engine instance before the engine starts (``_on_start`` creates the
task from ``self._run_data_queue``): Nautilus' compiled code is not patched, and its stop
(sentinel), kill (task cancel) and queue-exception handling keep working on this coroutine.
"""

import asyncio
from typing import Any

__all__ = ["CommandsFirstDataQueue"]


class CommandsFirstDataQueue:
    """Data-queue consumer of a ``LiveDataEngine``: one record, then its commands.

    Parameters
    ----------
    kernel : NautilusKernel
        A built live kernel (its ``data_engine``, ``risk_engine``, ``exec_engine``).
    quiet_turns : int, default 2
        Consecutive event-loop turns without command-path activity that end the wait (a
        command hands on through ``call_soon_threadsafe``, one turn per hop).
    max_turns : int, default 10_000
        Turns waited at most after one record: a component that keeps sending commands does
        not stall the data (the wait ends and is counted in :attr:`cut_short`).

    Attributes
    ----------
    records : int
        Records handled.
    turns : int
        Event-loop turns waited in all.
    cut_short : int
        Waits that reached ``max_turns``.
    """

    def __init__(self, kernel: Any, quiet_turns: int = 2, max_turns: int = 10_000) -> None:
        if quiet_turns < 1:
            raise ValueError(f"quiet_turns must be >= 1, was {quiet_turns}")
        self._data = kernel.data_engine
        self._risk = kernel.risk_engine
        self._exec = kernel.exec_engine
        self.quiet_turns = quiet_turns
        self.max_turns = max_turns
        self.records = 0
        self.turns = 0
        self.cut_short = 0

    def install(self) -> None:
        """Make the data engine run :meth:`run` as its data-queue task (before it starts)."""
        if self._data.is_running:
            raise RuntimeError("CommandsFirstDataQueue must be installed before the node starts")
        self._data._run_data_queue = self.run

    def summary(self) -> dict[str, int]:
        return {"records": self.records, "turns": self.turns, "cut_short": self.cut_short}

    def _command_path(self) -> tuple[int, int, int, int]:
        risk, exe = self._risk, self._exec
        return (risk.cmd_qsize(), exe.cmd_qsize(), risk.command_count, exe.command_count)

    async def _commands_leave(self) -> None:
        quiet = 0
        last = self._command_path()
        for _ in range(self.max_turns):
            await asyncio.sleep(0)
            self.turns += 1
            current = self._command_path()
            if current == last and not current[0] and not current[1]:
                quiet += 1
                if quiet >= self.quiet_turns:
                    return
            else:
                quiet = 0
                last = current
        self.cut_short += 1

    async def run(self) -> None:
        """The data-queue task: Nautilus' loop (sentinel, exception handling) plus the wait."""
        engine = self._data
        queue: asyncio.Queue = engine._data_queue
        sentinel = engine._sentinel
        log = engine._log
        log.debug(f"Data queue processing starting (qsize={engine.data_qsize()}), commands first")
        try:
            while True:
                try:
                    data = await queue.get()
                    if data is sentinel:
                        break
                    engine._handle_data(data)
                    self.records += 1
                    await self._commands_leave()
                except asyncio.CancelledError:
                    log.warning("Data message queue canceled")
                    break
                except Exception as e:
                    engine._handle_queue_exception(e, "Data")
        finally:
            if not queue.empty():
                log.warning(f"Data message queue stopped with {engine.data_qsize()} message(s)")
            else:
                log.debug("Data message queue stopped")
