"""Retry policy per channel: capped exponential backoff with deterministic jitter.

Delay before attempt n+1 = min(max_backoff_s, initial_backoff_s x multiplier^(n-1)) x (1 - jitter x u),
with u in [0, 1) drawn from a hash of (alert id, n): spread out like random jitter, so alerts that
failed together do not all retry together (the "thundering herd" that jitter exists to break up:
https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/), yet the same after a restart.
A receiver's Retry-After (seconds) is honoured up to max_backoff_s.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Attempts in all, the first included; then the alert is marked failed (and stays listed as such).
    max_attempts: int = Field(default=40, ge=1, le=10_000)
    initial_backoff_s: float = Field(default=15.0, gt=0)
    max_backoff_s: float = Field(default=900.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    jitter: float = Field(default=0.2, ge=0.0, lt=1.0)
    timeout_s: float = Field(default=10.0, gt=0, le=300)  # one attempt's network timeout

    @model_validator(mode="after")
    def _cap_above_start(self) -> RetryPolicy:
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("max_backoff_s must be at least initial_backoff_s")
        return self

    def delay(self, attempt: int, key: str, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based) of the alert `key`."""
        if attempt < 1:
            raise ValueError("attempts are numbered from 1")
        # The exponent is capped before it can overflow a float; the cap applies anyway.
        base = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** min(attempt - 1, 64))
        digest = hashlib.sha256(f"{key}/{attempt}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2.0**64
        wait = base * (1.0 - self.jitter * u)
        if retry_after_s is not None and retry_after_s > wait:
            wait = min(retry_after_s, self.max_backoff_s)
        return wait

    def total_wait(self) -> float:
        """The longest an outage can last before an alert is given up (all delays without jitter)."""
        return sum(
            min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** min(n - 1, 64))
            for n in range(1, self.max_attempts)
        )
