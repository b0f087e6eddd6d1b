"""The soak harness, short: replicas behind a proxy, a SIGKILL, a Postgres restart, faults."""

from __future__ import annotations

import pytest

from tests.bench.soak import Options, run_soak


@pytest.mark.timeout(90)
async def test_short_soak_keeps_every_acknowledged_webhook_and_matches_the_sandbox() -> None:
    """Nothing acknowledged is lost or stuck; appointments equal the sandbox's bookings."""
    report = await run_soak(Options(seconds=8, professionals=2, rate=3.0))
    assert not report.violations, report.text()
    assert (report.chaos.killed, report.chaos.replaced, report.chaos.postgres_restarts) == (1, 1, 1)
    assert report.found.acknowledged > 0
    assert report.found.appointments == report.found.sandbox_appointments > 0
