"""How many order numbers a customer may ask about: a sliding hour per customer, per process.

Every "ORDER NUMBER" counts, found or not, so numbers cannot be probed; the customer's own list
("my orders") does not. Each outcome is counted in /metrics (`crm_order_lookups_total`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from crm.metrics import ORDER_LOOKUPS

WINDOW = 3600.0
_SWEEP_EVERY = 1000


class LookupLimiter:
    def __init__(self, per_hour: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_hour = per_hour
        self.clock = clock
        self._seen: dict[int, deque[float]] = {}
        self._calls = 0

    def allow(self, customer_id: int) -> bool:
        """Count one lookup; False (and counted as refused) past the limit."""
        now = self.clock()
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)
        times = self._seen.setdefault(customer_id, deque())
        while times and times[0] <= now - WINDOW:
            times.popleft()
        if len(times) >= self.per_hour:
            ORDER_LOOKUPS.labels(outcome="refused").inc()
            return False
        times.append(now)
        return True

    def _sweep(self, now: float) -> None:
        for customer_id in [c for c, t in self._seen.items() if not t or t[-1] <= now - WINDOW]:
            del self._seen[customer_id]


def counted(found: bool) -> None:
    ORDER_LOOKUPS.labels(outcome="found" if found else "not_found").inc()
