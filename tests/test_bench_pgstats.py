"""`make profile`'s Postgres table: statement CPU from log_statement_stats, added up per text."""

from __future__ import annotations

from pathlib import Path

from tests.bench.pgstats import statements, table

LOG = """\
2026-12-03 13:56:06.979 UTC [7671] LOG:  BIND MESSAGE STATISTICS
2026-12-03 13:56:06.979 UTC [7671] DETAIL:  ! system usage stats:
\t!\t0.000040 s user, 0.000010 s system, 0.000050 s elapsed
2026-12-03 13:56:06.979 UTC [7671] STATEMENT:  -- name: insert
\tINSERT INTO t (a)
\tVALUES ($1)
2026-12-03 13:56:06.980 UTC [7671] LOG:  EXECUTE MESSAGE STATISTICS
2026-12-03 13:56:06.980 UTC [7671] DETAIL:  ! system usage stats:
\t!\t0.000300 s user, 0.000100 s system, 0.000450 s elapsed
2026-12-03 13:56:06.980 UTC [7671] STATEMENT:  -- name: insert
\tINSERT INTO t (a)
\tVALUES ($1)
2026-12-03 13:56:06.990 UTC [7659] LOG:  QUERY STATISTICS
2026-12-03 13:56:06.990 UTC [7659] DETAIL:  ! system usage stats:
\t!\t0.000021 s user, 0.000002 s system, 0.000023 s elapsed
2026-12-03 13:56:06.990 UTC [7659] STATEMENT:  COMMIT;
2026-12-03 13:56:06.991 UTC [7625] LOG:  received SIGHUP, reloading configuration files
"""


def test_each_statement_adds_up_its_messages() -> None:
    found = [(s.text, round(s.seconds * 1e6), s.executions) for s in statements(LOG)]
    assert found == [("INSERT INTO t (a) VALUES ($1)", 450, 1), ("COMMIT;", 23, 1)]


def test_the_table_is_per_delivery(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text(LOG)
    rows = table(log, deliveries=10).splitlines()[4:]
    assert rows == [
        "| 45.0 | 95.1% | 1 | `INSERT INTO t (a) VALUES ($1)` |",
        "| 2.3 | 4.9% | 1 | `COMMIT;` |",
    ]
