"""Fixed-window rate limiting per Calendly user."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Window:
    """One key's current window."""

    started: float
    used: int = 0


@dataclass(slots=True, frozen=True)
class Decision:
    """Outcome of one request against the limiter, with the header values."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers for this decision."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    """Counts requests per key in fixed windows of `window_seconds`."""

    def __init__(self) -> None:
        self.windows: dict[str, Window] = {}

    def hit(self, key: str, limit: int, window_seconds: int) -> Decision:
        """Count one request for key; disallowed once the window's budget is spent."""
        now = time.monotonic()
        window = self._current(key, window_seconds, now)
        allowed = window.used < limit
        if allowed:
            window.used += 1
        return self._decision(window, allowed, limit, window_seconds, now)

    def peek(self, key: str, limit: int, window_seconds: int) -> Decision:
        """Report the key's state without counting a request."""
        now = time.monotonic()
        window = self._current(key, window_seconds, now)
        return self._decision(window, window.used < limit, limit, window_seconds, now)

    def clear(self) -> None:
        """Forget every window."""
        self.windows.clear()

    def _current(self, key: str, window_seconds: int, now: float) -> Window:
        """Return the live window for key, starting a new one when the old expired."""
        window = self.windows.get(key)
        if window is None or now >= window.started + window_seconds:
            window = Window(started=now)
            self.windows[key] = window
        return window

    @staticmethod
    def _decision(
        window: Window, allowed: bool, limit: int, window_seconds: int, now: float
    ) -> Decision:
        """Build the decision and header values for a window."""
        reset = max(1, math.ceil(window.started + window_seconds - now))
        return Decision(allowed, limit, max(0, limit - window.used), reset)
