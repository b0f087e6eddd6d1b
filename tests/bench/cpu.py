"""CPU time per role while a benchmark phase runs (Linux /proc), to show where a figure goes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
# a child process's role, by what its command line runs
ROLES = {
    "tests.bench.loadgen": "load generator",
    "tests.bench.ceiling": "ceiling",
    "calendly_svc serve": "edge",
    "calendly_svc worker": "worker",
}
SAMPLE_SECONDS = 0.25  # often enough to see the load generator before it exits


def _stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _role(pid: str, parent: int, postmaster: int) -> str | None:
    """What a process is in this benchmark, or None when it is not part of it."""
    if int(pid) == postmaster or parent == postmaster:
        return "postgres"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    return next((role for key, role in ROLES.items() if key in command), None)


class CpuMeter:
    """CPU seconds by role: the bench's child processes, and Postgres (the postmaster and its
    children), sampled through a phase; a process's last sample counts after it exits."""

    def __init__(self, pgdata: Path) -> None:
        self.postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])

    def _sample(self) -> dict[str, tuple[str, float]]:
        """{pid: (role, CPU seconds)} of every process taking part now."""
        seen = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (stat := _stat(entry)) is not None:
                role = _role(entry, stat[0], self.postmaster)
                if role is not None:
                    seen[entry] = (role, stat[1])
        return seen

    async def measure(self, work: Awaitable[T]) -> tuple[T, dict[str, float]]:
        """Run the work; its result, and the CPU seconds each role spent meanwhile."""
        before = self._sample()
        last = dict(before)
        task = asyncio.ensure_future(work)
        while not task.done():
            await asyncio.wait({task}, timeout=SAMPLE_SECONDS)
            last.update(self._sample())
        spent: dict[str, float] = {}
        for pid, (role, seconds) in last.items():
            start = before.get(pid, (role, 0.0))[1]
            spent[role] = spent.get(role, 0.0) + seconds - start
        return task.result(), spent


def per_request(spent: dict[str, float], requests: int) -> str:
    """`role N µs, ...` of CPU per request, largest first."""
    micros = {role: seconds / max(requests, 1) * 1e6 for role, seconds in spent.items()}
    parts = sorted(((r, m) for r, m in micros.items() if m >= 1), key=lambda item: -item[1])
    return ", ".join(f"{role} {value:.0f}" for role, value in parts)
