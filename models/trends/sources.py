"""Which signup sources are watched on their own, and what a raw `utm_source` is watched as.

Sources are free text from web forms, so they are normalised (case, spaces, odd characters) and a
value that looks like an email address or a phone number is never a metric name (it could be a
person's): it counts in "other". A source is watched on its own once it brings a material share of
recent signups; the rest are pooled as "other", so a surge from a long tail of small sources is
still seen. The set only grows: a source that dries up keeps its detector, which is how a drought
is flagged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

OTHER = "other"
NONE = "none"  # signups without a utm_source
_UNSAFE = re.compile(r"[^a-z0-9_.\-]+")
_DIGITS = re.compile(r"\d")


@dataclass(frozen=True)
class SourcePolicy:
    min_share: float = 0.05  # of the trailing window's signups
    min_per_day: float = 5.0  # campaign-wide
    max_sources: int = 8  # watched on their own, "other" apart
    window_days: int = 28

    def __post_init__(self) -> None:
        if not 0 < self.min_share <= 1 or self.min_per_day < 0 or self.max_sources < 0 or self.window_days < 1:
            raise ValueError(f"invalid source policy {self}")


def normalise_source(raw: str) -> str:
    """Lower case, runs of other characters as "_", at most 40 characters; empty → "none";
    anything that might be contact details → "other"."""
    text = raw.strip().lower()
    if not text:
        return NONE
    if "@" in text or len(_DIGITS.findall(text)) >= 7:
        return OTHER
    cleaned = _UNSAFE.sub("_", text).strip("_")[:40]
    return cleaned or OTHER


def choose_sources(
    totals: Mapping[str, int], days: float, watched: tuple[str, ...], policy: SourcePolicy | None = None
) -> tuple[str, ...]:
    """The sources to watch on their own: those already watched, plus the biggest newcomers above the
    policy's share and daily volume (normalised names; `totals` are raw utm_source counts)."""
    p = policy or SourcePolicy()
    merged: dict[str, int] = {}
    for raw, n in totals.items():
        name = normalise_source(raw)
        merged[name] = merged.get(name, 0) + int(n)
    total = sum(merged.values())
    chosen = list(watched)
    if total <= 0 or days <= 0:
        return tuple(chosen)
    ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    for name, n in ranked:
        if len(chosen) >= p.max_sources:
            break
        if name in chosen or name == OTHER:
            continue
        if n / total >= p.min_share and n / days >= p.min_per_day:
            chosen.append(name)
    return tuple(chosen)


def bucket_of(raw: str, watched: tuple[str, ...]) -> str:
    """The detector a signup from `raw` counts in."""
    name = normalise_source(raw)
    return name if name in watched else OTHER
