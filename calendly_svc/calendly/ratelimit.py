"""Per-Calendly-user rate limiting: a leaky bucket plus a gate closed by 429s."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter


@dataclass
class _UserLimit:
    """One Calendly user's limiter and the moment its window reopens."""

    limiter: AsyncLimiter
    blocked_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RateLimiters:
    """Limits requests per Calendly user; adapts to X-RateLimit-Limit and honours Reset.

    Calendly counts per user per 60-second window; tests shorten the window on both sides.
    """

    def __init__(self, default_limit: int, window_seconds: float = 60.0) -> None:
        self._default = default_limit
        self._window = window_seconds
        self._users: dict[str, _UserLimit] = {}

    def _get(self, user: str) -> _UserLimit:
        """The user's state, created on first use."""
        if user not in self._users:
            self._users[user] = _UserLimit(AsyncLimiter(self._default, self._window))
        return self._users[user]

    async def acquire(self, user: str) -> None:
        """Wait for the gate, then for capacity in the user's bucket."""
        state = self._get(user)
        delay = state.blocked_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await state.limiter.acquire()

    def block(self, user: str, seconds: float) -> None:
        """Close the gate for this user until the window resets."""
        state = self._get(user)
        state.blocked_until = max(state.blocked_until, time.monotonic() + seconds)

    def observe_limit(self, user: str, limit: int) -> None:
        """Adopt the limit Calendly reports for this user (e.g. 50 on Free, 500 on paid)."""
        state = self._get(user)
        if limit > 0 and state.limiter.max_rate != limit:
            state.limiter = AsyncLimiter(limit, self._window)

    def limit_of(self, user: str) -> float:
        """The number of calls per window currently allowed for this user."""
        return self._get(user).limiter.max_rate
