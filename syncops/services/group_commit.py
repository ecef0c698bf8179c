"""Group commit: threads of one process that write at the same moment share one statement.

Why: under load, a web process's threads each spent a database round trip, a pool checkout and
a commit on one small INSERT (the webhook inbox), and under gunicorn's threads that path cost
~1.3 ms of the process's CPU per request, more than half of a delivery (docs/BENCHMARKS.md).
Here the first thread to arrive (the *leader*) writes at once, alone, on its own connection, so
a trickle waits for nothing; threads arriving while it writes queue up, and when it is done the
oldest of them leads the next statement for all of them. A burst of k concurrent writes costs
~2 statements instead of k, with no timer and no added latency.

The writer is a callable taking the rows and returning one result per row, in order. It runs on
the leader's thread (its connection, its transaction rules); followers never touch a connection.
An error is every row's error, except one of ``split_on`` in a batch of several: then each row is
written again on its own, so one bad row (e.g. a NUL the database refuses) fails only its own
request. Rows whose key is already in the batch wait for the next one, so a statement never holds
two copies of one key (the unique index decides between them, as it would between two requests).
"""
from __future__ import annotations

import copy
import os
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

Row = TypeVar("Row")
Result = TypeVar("Result")

_UNSET: Any = object()


class _Slot(Generic[Row, Result]):
    """One caller's row, its outcome, and the lock it sleeps on (a bare lock is the cheapest
    thread hand-off Python has: acquired at creation, released by whoever decides its fate)."""

    __slots__ = ("error", "key", "lead", "result", "row", "wake")

    def __init__(self, row: Row, key: Hashable) -> None:
        self.row, self.key = row, key
        self.result: Result = _UNSET
        self.error: BaseException | None = None
        self.lead = False
        self.wake = threading.Lock()
        self.wake.acquire()


class GroupCommit(Generic[Row, Result]):
    """Leader/follower batching of ``write`` calls across the threads of one process."""

    def __init__(self, write: Callable[[Sequence[Row]], Sequence[Result]], *, key: Callable[[Row], Hashable],
                 max_batch: int = 32, split_on: tuple[type[BaseException], ...] = ()) -> None:
        self._write, self._key, self._max, self._split_on = write, key, max_batch, split_on
        self._lock = threading.Lock()
        self._pending: list[_Slot[Row, Result]] = []
        self._busy = False
        # A child forked while a statement ran here would inherit a leader and waiters that do not
        # exist in it, and queue behind them forever: it starts empty instead.
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (group := me()) is not None and group._forget())
        # Statements written and rows in them, for tests (plain ints: a torn read
        # of a counter is harmless, a lock per write is not free).
        self.statements = 0
        self.rows = 0

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pending = []
        self._busy = False

    def submit(self, row: Row) -> Result:
        """Write ``row`` (alone or with whatever else is waiting) and return its result."""
        slot: _Slot[Row, Result] = _Slot(row, self._key(row))
        with self._lock:
            self._pending.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            slot.wake.acquire()  # released with our outcome, or to make us the next leader
            lead = slot.lead
        if lead:
            self._lead(slot)
        if slot.error is not None:
            if lead:
                raise slot.error
            # Raised on the leader's thread: raise a copy, so two threads never unwind one object.
            raise copy.copy(slot.error).with_traceback(None) from slot.error
        return slot.result

    def _take(self) -> list[_Slot[Row, Result]]:
        """The next batch, oldest first (the leader is the oldest); a key seen twice stays queued."""
        batch: list[_Slot[Row, Result]] = []
        keys: set[Hashable] = set()
        rest: list[_Slot[Row, Result]] = []
        for slot in self._pending:
            if len(batch) < self._max and slot.key not in keys:
                keys.add(slot.key)
                batch.append(slot)
            else:
                rest.append(slot)
        self._pending = rest
        return batch

    def _lead(self, own: _Slot[Row, Result]) -> None:
        with self._lock:
            batch = self._take()
        try:
            self._run(batch)
        finally:
            for slot in batch:
                if slot is not own:
                    slot.wake.release()
            with self._lock:
                if self._pending:
                    successor = self._pending[0]
                    successor.lead = True
                    successor.wake.release()
                else:
                    self._busy = False

    def _run(self, batch: list[_Slot[Row, Result]]) -> None:
        try:
            self._store(batch, self._write([slot.row for slot in batch]))
        except self._split_on as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            for slot in batch:  # find the row at fault: each on its own
                try:
                    self._store([slot], self._write([slot.row]))
                except BaseException as single:
                    slot.error = single
        except BaseException as exc:
            for slot in batch:
                slot.error = exc

    def _store(self, batch: list[_Slot[Row, Result]], results: Sequence[Result]) -> None:
        if len(results) != len(batch):
            raise RuntimeError(f"group commit: {len(results)} results for {len(batch)} rows")
        self.statements += 1
        self.rows += len(batch)
        for slot, result in zip(batch, results, strict=True):
            slot.result = result
