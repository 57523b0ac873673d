"""Retry policy: how many attempts, and how long to wait between them."""
from __future__ import annotations

import random
from dataclasses import dataclass

MAX_RETRIES = 3  # so at most 1 + 3 = 4 provider attempts per retry budget


@dataclass(frozen=True)
class Backoff:
    base: float = 10.0
    cap: float = 300.0

    def delay(self, retry_number: int, *, retry_after: float | None = None, rand=random.random) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based).

        ``base * 2**(n-1)``, jittered to between 75% and 125% of that, capped
        at ``cap``; a provider's ``Retry-After`` is a floor.
        """
        raw = self.base * (2 ** max(retry_number - 1, 0))
        jittered = min(self.cap, raw * (0.75 + 0.5 * rand()))
        if retry_after is not None:
            jittered = max(jittered, min(float(retry_after), self.cap))
        return jittered


def should_retry(attempts_in_budget: int) -> bool:
    """After ``attempts_in_budget`` failed transient attempts, may we try again?"""
    return attempts_in_budget <= MAX_RETRIES
