"""CPU time read from /proc, for benches on a shared machine: wall time mostly measures the
neighbours, a server's own CPU seconds do not."""
from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str | int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "


def group_cpu_seconds(pgid: int) -> float:
    """utime + stime of every live process in process group ``pgid`` (gunicorn's master and
    workers, all threads), plus what their exited children used (cutime + cstime, counted once
    reaped): the server's CPU, whatever else the shared machine runs, recycled workers included."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(entry)) is not None and int(fields[2]) == pgid:  # pgrp
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # u/s, children's
    return total / _TICK


def pids_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (e.g. the PostgreSQL backends serving one database):
    a process that has exited counts 0, so read the same list before and after."""
    total = 0
    for pid in pids:
        if (fields := _stat_fields(pid)) is not None:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def cpu_ticks() -> list[int]:
    """The machine's CPU counters now (/proc/stat's first line), for ``idle_share``."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def _shares(before: list[int], after: list[int]) -> list[float]:
    """Each counter's share of the CPU time between two readings: user nice system idle iowait irq
    softirq steal (guest time is inside user)."""
    delta = [b - a for a, b in zip(before[:8], after[:8])]
    total = sum(delta)
    return [d / total if total else 0.0 for d in delta]


def idle_share(before: list[int], after: list[int]) -> float:
    """Share of the machine's CPU time left idle between two ``cpu_ticks`` readings: above a few
    per cent at saturation, the server is waiting on something (locks, a round trip), not working."""
    shares = _shares(before, after)
    return shares[3] + shares[4]


class HostSteal:
    """Share of CPU time the hypervisor gave other tenants while a bench ran (/proc/stat's
    "steal"). On this shared host it swung from 1 % to 52 % in one day, and the figures with it:
    printed beside a result, it says whether a "regression" was the neighbours."""

    def __init__(self) -> None:
        self._start = cpu_ticks()

    def percent(self) -> float:
        return 100.0 * _shares(self._start, cpu_ticks())[7]

    def line(self) -> str:
        return f"host CPU steal during the run: {self.percent():.1f} % (above ~5 %, re-run on a quieter host)"
