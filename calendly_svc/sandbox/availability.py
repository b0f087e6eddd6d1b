"""Records of the write endpoints: weekly availability per user, the Scheduling API's per-plan
limits and call times, single-use scheduling links."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as clock

from .models import User

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Interval = tuple[clock, clock]
# Calendly's default working hours: Monday to Friday, 09:00-17:00 in the user's timezone
DEFAULT_WEEK: dict[str, tuple[Interval, ...]] = {
    day: ((clock(9), clock(17)),) for day in WEEKDAYS[:5]
}

# FACTS §13.7: the Scheduling API's limits per user, as (requests, window seconds)
PLAN_LIMITS: dict[str, tuple[tuple[int, int], ...]] = {
    "trial": ((5, 86_400),),
    "standard": ((10, 60), (50, 3_600), (100, 86_400)),
    "enterprise": ((500, 60),),
}
DEFAULT_PLAN = "standard"


@dataclass(slots=True)
class Availability:
    """A user's weekly hours (local wall-clock intervals per weekday) in a timezone."""

    timezone: str
    week: dict[str, tuple[Interval, ...]]


@dataclass(slots=True)
class SchedulingLink:
    """A single-use booking link of one event type."""

    code: str
    event_type_uuid: str
    creator_uuid: str
    created_at: datetime
    invitee_uuid: str | None = None


@dataclass
class SchedulingState:
    """Availability, plans, Scheduling API call times and links, kept beside the bookings."""

    availability: dict[str, Availability] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)
    calls: dict[str, deque[float]] = field(default_factory=dict)
    links: dict[str, SchedulingLink] = field(default_factory=dict)

    def availability_of(self, user: User) -> Availability:
        """The user's hours: as set, else the default week in the user's timezone."""
        return self.availability.get(user.uuid) or Availability(user.timezone, DEFAULT_WEEK)

    def plan_of(self, user_uuid: str) -> str:
        """The user's plan (default: a paid, non-Enterprise one)."""
        return self.plans.get(user_uuid, DEFAULT_PLAN)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A Scheduling API call over a limit: the X-RateLimit-* values to answer with."""

    limit: int
    reset: int

    def headers(self) -> dict[str, str]:
        """The rate-limit headers of the 429."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(self.reset),
        }


def take_booking_call(
    scheduling: SchedulingState, user_uuid: str, limits: tuple[tuple[int, int], ...]
) -> Refusal | None:
    """Count one Scheduling API call in sliding windows; a Refusal when a window is full."""
    now = time.monotonic()
    calls = scheduling.calls.setdefault(user_uuid, deque())
    longest = max(seconds for _, seconds in limits)
    while calls and calls[0] <= now - longest:
        calls.popleft()
    for count, seconds in limits:
        inside = [moment for moment in calls if moment > now - seconds]
        if len(inside) >= count:
            reset = max(1, math.ceil(inside[-count] + seconds - now))
            return Refusal(count, reset)
    calls.append(now)
    return None
