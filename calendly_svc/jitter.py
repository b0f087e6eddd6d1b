"""Jitter for backoffs and polling, drawn from the OS rather than the global `random` state.

Whoever seeds or replays the global state (property-based tests generating inputs in a thread
while the service's event loop runs) must not see the service draw from it.
"""

from __future__ import annotations

import random

_SOURCE = random.SystemRandom()


def jittered(low: float, high: float) -> float:
    """A uniform draw between low and high."""
    return _SOURCE.uniform(low, high)
