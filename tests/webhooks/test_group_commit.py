"""Group commit (syncops/services/group_commit.py) with real threads: who writes, with whom, and
what each caller gets back. The writer is a plain function that records its calls and can be
held at a gate, so a batch can be formed deterministically; nothing is mocked."""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from syncops.services.group_commit import GroupCommit


class Writer:
    """Records each statement's rows; the first call waits at ``gate`` when one is set."""

    def __init__(self, *, fail: set[str] | None = None, fail_with: type[BaseException] = ValueError) -> None:
        self.calls: list[list[str]] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.fail, self.fail_with = fail or set(), fail_with

    def __call__(self, rows: Sequence[str]) -> list[str]:
        self.calls.append(list(rows))
        self.entered.set()
        if self.gate is not None:
            gate, self.gate = self.gate, None
            assert gate.wait(10)
        if self.fail & set(rows):
            raise self.fail_with(f"bad row among {sorted(rows)}")
        return [f"stored:{row}" for row in rows]


def _key(row: str) -> str:
    return row.split("#")[0]


def _start(group: GroupCommit, rows: list[str], out: dict[str, object]) -> list[threading.Thread]:
    def call(row: str) -> None:
        try:
            out[row] = group.submit(row)
        except BaseException as exc:  # the test inspects what each caller got
            out[row] = exc

    threads = [threading.Thread(target=call, args=(row,)) for row in rows]
    for thread in threads:
        thread.start()
    return threads


def _wait_queued(group: GroupCommit, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(group._pending) < n:
        assert time.monotonic() < deadline, f"{len(group._pending)} of {n} callers queued"
        time.sleep(0.001)


def _queued_behind_a_leader(group: GroupCommit, writer: Writer, rows: list[str]) -> dict[str, object]:
    """Submit ``rows`` while a first caller ("lead") is held inside its own statement; release it
    once all of them queue, and return every caller's answer."""
    out: dict[str, object] = {}
    writer.gate = gate = threading.Event()
    threads = _start(group, ["lead"], out)
    assert writer.entered.wait(10)
    threads += _start(group, rows, out)
    _wait_queued(group, len(rows))
    gate.set()
    for thread in threads:
        thread.join(10)
    return out


def test_a_lone_caller_writes_at_once_and_alone():
    writer = Writer()
    group = GroupCommit(writer, key=_key)
    assert group.submit("a") == "stored:a"
    assert group.submit("b") == "stored:b"
    assert writer.calls == [["a"], ["b"]]
    assert (group.statements, group.rows) == (2, 2)


def test_callers_arriving_while_a_statement_runs_share_the_next_one():
    writer = Writer()
    group = GroupCommit(writer, key=_key)
    out = _queued_behind_a_leader(group, writer, ["a", "b", "c", "d"])
    assert writer.calls[0] == ["lead"]
    assert len(writer.calls) == 2 and sorted(writer.calls[1]) == ["a", "b", "c", "d"]
    assert out == {row: f"stored:{row}" for row in ("lead", "a", "b", "c", "d")}
    assert not group._busy and not group._pending  # the last leader handed nothing on


def test_a_batch_never_exceeds_max_batch():
    writer = Writer()
    group = GroupCommit(writer, key=_key, max_batch=2)
    out = _queued_behind_a_leader(group, writer, ["a", "b", "c", "d", "e"])
    assert [len(call) for call in writer.calls] == [1, 2, 2, 1]
    assert sorted(row for call in writer.calls for row in call) == ["a", "b", "c", "d", "e", "lead"]
    assert all(out[row] == f"stored:{row}" for row in out)


def test_two_rows_with_one_key_never_share_a_statement():
    writer = Writer()
    group = GroupCommit(writer, key=_key)
    out = _queued_behind_a_leader(group, writer, ["x#1", "x#2", "y"])
    assert len(writer.calls) == 3
    for call in writer.calls:
        assert len({_key(row) for row in call}) == len(call), writer.calls
    assert all(out[row] == f"stored:{row}" for row in ("x#1", "x#2", "y"))


def test_a_row_refused_for_its_data_fails_only_its_own_caller():
    writer = Writer(fail={"bad"})
    group = GroupCommit(writer, key=_key, split_on=(ValueError,))
    out = _queued_behind_a_leader(group, writer, ["a", "bad", "b"])
    assert isinstance(out["bad"], ValueError)
    assert out["a"] == "stored:a" and out["b"] == "stored:b" and out["lead"] == "stored:lead"
    # the shared statement failed, then each of its rows was written on its own
    assert sorted(writer.calls[1]) == ["a", "b", "bad"]
    assert sorted(map(tuple, writer.calls[2:])) == [("a",), ("b",), ("bad",)]


def test_any_other_error_fails_every_row_of_the_statement_and_the_next_caller_is_unaffected():
    writer = Writer(fail={"b"}, fail_with=ConnectionError)
    group = GroupCommit(writer, key=_key, split_on=(ValueError,))
    out = _queued_behind_a_leader(group, writer, ["a", "b"])
    assert out["lead"] == "stored:lead"
    assert isinstance(out["a"], ConnectionError) and isinstance(out["b"], ConnectionError)
    assert out["a"] is not out["b"]  # each thread unwinds its own copy
    assert len(writer.calls) == 2  # no per-row retry for an error that is not the row's fault
    assert group.submit("c") == "stored:c"


def test_a_wrong_number_of_results_is_an_error_not_a_misattribution():
    group = GroupCommit(lambda rows: ["only one"] * (len(rows) + 1), key=_key)
    with pytest.raises(RuntimeError, match="2 results for 1 rows"):
        group.submit("a")


def test_many_threads_each_get_their_own_result():
    writer = Writer()
    group = GroupCommit(writer, key=_key)
    out: dict[str, object] = {}
    rows = [f"r{i}" for i in range(200)]
    for thread in _start(group, rows, out):
        thread.join(10)
    assert out == {row: f"stored:{row}" for row in rows}
    assert sorted(row for call in writer.calls for row in call) == sorted(rows)
    assert group.rows == 200 and group.statements == len(writer.calls)


def test_a_child_forked_during_a_statement_writes_without_waiting_for_it():
    """The child inherits neither the parent's leader nor its waiters (neither exists in it)."""
    import os

    writer, out = Writer(), {}
    group = GroupCommit(writer, key=_key)
    writer.gate = gate = threading.Event()
    threads = _start(group, ["lead"], out)
    assert writer.entered.wait(10) and group._busy
    child = os.fork()
    if child == 0:
        code = 1
        try:
            done = threading.Event()
            result: list[object] = []
            threading.Thread(target=lambda: (result.append(group.submit("c")), done.set()), daemon=True).start()
            code = 0 if done.wait(5) and result == ["stored:c"] else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == {"lead": "stored:lead"}
