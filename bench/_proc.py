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
    workers, all threads): the server's CPU, whatever else the shared machine runs."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(entry)) is not None and int(fields[2]) == pgid:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def pids_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (e.g. the PostgreSQL backends serving one database):
    a process that has exited counts 0, so read the same list before and after."""
    total = 0
    for pid in pids:
        if (fields := _stat_fields(pid)) is not None:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK
