"""CPU seconds spent by named process trees and by one database's PostgreSQL backends, read from /proc.

The machine is shared, so its own busy time says nothing of ours: every figure here is read per process.
A tree's figure is utime + stime + cutime + cstime of its root and of every live descendant: a child that exits
and is waited for (a worker's flow-run processes) moves its time into its parent's cutime/cstime, so the sum
neither loses it nor counts it twice. PostgreSQL backends are children of the postmaster, not of us; they are
found by the database name on their command line ("postgres: 15/main: user dbname host(port) state").
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    ppid: int
    own: float  # utime + stime, seconds
    children: float  # cutime + cstime: children that exited and were waited for


def read_stat(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses: split after the last ")"
    return ProcStat(ppid=int(fields[1]), own=(int(fields[11]) + int(fields[12])) / TICK,
                    children=(int(fields[13]) + int(fields[14])) / TICK)


def process_table() -> dict[int, ProcStat]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := read_stat(int(entry))) is not None:
            table[int(entry)] = stat
    return table


def tree_cpu_seconds(root: int, table: dict[int, ProcStat]) -> float:
    """CPU seconds of ``root`` and all its descendants, living and waited for."""
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.ppid, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if (stat := table.get(pid)) is not None:
            total += stat.own + stat.children
            stack.extend(children.get(pid, ()))
    return total


def postgres_backends(database: str) -> dict[int, float]:
    """{pid: CPU seconds} of the PostgreSQL backends connected to ``database``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            words = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
        except OSError:
            continue
        # "postgres: 15/main: postgres erpsync_ledger_x 127.0.0.1(5432) idle": the database follows the user.
        if words[:1] == ["postgres:"] and database in words[2:5] and (stat := read_stat(int(entry))) is not None:
            found[int(entry)] = stat.own
    return found


@dataclass
class CpuMeter:
    """CPU seconds of each named part between ``start()`` and ``stop()``.

    ``trees``: {name: pid of a process tree we started}; ``databases``: {name: PostgreSQL database}. Backends come
    and go with connection pools, so they are sampled every ``interval`` seconds while the meter runs; a backend
    that exits between two samples loses at most one interval of its time (the pools keep theirs open).
    """

    trees: dict[str, int]
    databases: dict[str, str] = field(default_factory=dict)
    interval: float = 0.5
    _trees_before: dict[str, float] = field(default_factory=dict)
    _backends_first: dict[str, dict[int, float]] = field(default_factory=dict)
    _backends_last: dict[str, dict[int, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        table = process_table()
        self._trees_before = {name: tree_cpu_seconds(pid, table) for name, pid in self.trees.items()}
        for name, database in self.databases.items():
            self._backends_first[name] = postgres_backends(database)
            self._backends_last[name] = dict(self._backends_first[name])
        self._thread = threading.Thread(target=self._sample, name="cpu-meter", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._read_backends()

    def _read_backends(self) -> None:
        for name, database in self.databases.items():
            for pid, seconds in postgres_backends(database).items():
                self._backends_first[name].setdefault(pid, 0.0)  # born during the burst: all its time counts
                self._backends_last[name][pid] = seconds

    def stop(self) -> dict[str, float]:
        """{part: CPU seconds spent since start()}."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._read_backends()
        table = process_table()
        spent = {name: tree_cpu_seconds(pid, table) - self._trees_before[name] for name, pid in self.trees.items()}
        for name in self.databases:
            first, last = self._backends_first[name], self._backends_last[name]
            spent[name] = sum(last[pid] - first[pid] for pid in last)
        return spent


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
