"""Postgres CPU per statement while a benchmark runs: `log_statement_stats` writes each
statement's getrusage() to the server log; this turns that into a table."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.bench.stack import scalar

_ENTRY = re.compile(r"\n(?=\S+ \S+ UTC \[\d+\] LOG:  [A-Z ]*STATISTICS)")
_USAGE = re.compile(r"([\d.]+) s user, ([\d.]+) s system")
_PHASE = re.compile(r"LOG:  ([A-Z]+)")
_STATEMENT = re.compile(r"STATEMENT:  (.*?)(?=\n\S+ \S+ UTC \[|\Z)", re.S)


@dataclass
class Statement:
    """CPU seconds and messages (parse, bind, execute) of one statement text."""

    text: str
    seconds: float = 0.0
    executions: int = 0


@contextlib.asynccontextmanager
async def statement_stats(dsn: str) -> AsyncIterator[None]:
    """Log every statement's resource use for the time of the block."""
    for sql in (
        "ALTER SYSTEM SET log_statement_stats = on",
        "ALTER SYSTEM SET log_min_error_statement = 'log'",
        "SELECT pg_reload_conf()",
    ):
        await scalar(dsn, sql)  # fmt: skip
    try:
        yield
    finally:
        for sql in (
            "ALTER SYSTEM RESET log_statement_stats",
            "ALTER SYSTEM RESET log_min_error_statement",
            "SELECT pg_reload_conf()",
        ):
            await scalar(dsn, sql)  # fmt: skip


def statements(log: str) -> list[Statement]:
    """Each statement text's CPU (its parse, bind and execute messages added up), largest first."""
    found: dict[str, Statement] = {}
    for entry in _ENTRY.split(log):
        usage, phase, text = _USAGE.search(entry), _PHASE.search(entry), _STATEMENT.search(entry)
        if usage is None or phase is None or text is None:
            continue
        lines = [line.strip() for line in text.group(1).splitlines()]
        key = " ".join(line for line in lines if line and not line.startswith("--"))[:90]
        item = found.setdefault(key, Statement(key))
        item.seconds += float(usage.group(1)) + float(usage.group(2))
        item.executions += phase.group(1) in ("EXECUTE", "QUERY")
    return sorted(found.values(), key=lambda s: -s.seconds)


def table(log_file: Path, deliveries: int) -> str:
    """A markdown table of the statements that took 0.5 % or more of Postgres's CPU."""
    found = statements(log_file.read_text(errors="replace"))
    total = sum(s.seconds for s in found) or 1.0
    lines = [
        f"{deliveries} deliveries; Postgres CPU per statement (log_statement_stats)",
        "",
        "| µs per delivery | share | runs | statement |",
        "| ---: | ---: | ---: | --- |",
    ]
    for item in found:
        if item.seconds / total >= 0.005:
            per = item.seconds / max(deliveries, 1) * 1e6
            share = item.seconds / total
            text = item.text.replace("|", "\\|")
            lines.append(f"| {per:.1f} | {share:.1%} | {item.executions} | `{text}` |")
    return "\n".join(lines) + "\n"
