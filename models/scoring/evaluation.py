"""Prequential evaluation (score first, then learn) and the evaluation slice.

For each labelled contact the stream first records the score the serving model gave, then lets
the model learn from it; the evaluator sees only (score, label, region). Every label is thus a
test label for the model of its time (Dawid's prequential principle, J. R. Stat. Soc. A 147, 1984).

Running (cumulative) log loss, Brier score and ECE are kept as exact sums over every label seen.
The last `window` labels (overall, and per region) are kept too, for windowed log loss, Brier,
ECE and the exact Mann-Whitney AUC: those show the model as it is now, not as it was at the start.
metrics.py defines each metric.

The evaluation slice is a fixed random share of voters whose contacts never train the model:
`EvaluationSlice(share, salt).contains(voter_ids)` keys BLAKE2b with the salt, so the choice is
deterministic across workers and restarts, independent of who was contacted, and a new salt
draws a new slice.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from models.scoring.metrics import (
    ECE_BINS,
    FloatArray,
    auc,
    bin_sums,
    brier_score,
    ece_from_bins,
    expected_calibration_error,
    log_loss,
    log_losses,
)

OVERALL = ""  # the region key of the all-regions scope in snapshot rows


@dataclass(frozen=True, slots=True)
class Metrics:
    """One scope's figures; NaN where a figure is undefined (no labels, or one class only for AUC)."""

    labels: int
    log_loss: float
    brier: float
    ece: float
    mean_score: float
    positive_rate: float
    window_labels: int
    window_log_loss: float
    window_brier: float
    window_ece: float
    window_auc: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    overall: Metrics
    regions: dict[str, Metrics]

    def rows(self) -> list[tuple[str, str, float]]:
        """(region, metric, value) rows for a metrics table or gauges; region "" is overall."""
        scopes = [(OVERALL, self.overall), *sorted(self.regions.items())]
        return [(region, name, value) for region, m in scopes for name, value in m.as_dict().items()]


class _RingBuffer:
    def __init__(self, capacity: int) -> None:
        self.scores = np.empty(capacity)
        self.labels = np.empty(capacity)
        self.capacity = capacity
        self.size = 0
        self._next = 0

    def extend(self, p: FloatArray, y: FloatArray) -> None:
        if p.size >= self.capacity:
            self.scores[:], self.labels[:] = p[-self.capacity :], y[-self.capacity :]
            self.size, self._next = self.capacity, 0
            return
        end = self._next + p.size
        first = min(end, self.capacity) - self._next
        head = slice(self._next, self._next + first)
        self.scores[head], self.labels[head] = p[:first], y[:first]
        rest = p.size - first
        self.scores[:rest], self.labels[:rest] = p[first:], y[first:]
        self._next = end % self.capacity
        self.size = min(self.size + p.size, self.capacity)

    def contents(self) -> tuple[FloatArray, FloatArray]:
        """Oldest first (order does not change any metric, but keeps debugging sane)."""
        if self.size < self.capacity:
            return self.scores[: self.size].copy(), self.labels[: self.size].copy()
        order = np.r_[self._next : self.capacity, 0 : self._next]
        return self.scores[order], self.labels[order]


@dataclass
class _Scope:
    window: int
    labels: int = 0
    log_loss_sum: float = 0.0
    squared_error_sum: float = 0.0
    score_sum: float = 0.0
    label_sum: float = 0.0
    bin_count: FloatArray = field(default_factory=lambda: np.zeros(ECE_BINS))
    bin_score: FloatArray = field(default_factory=lambda: np.zeros(ECE_BINS))
    bin_label: FloatArray = field(default_factory=lambda: np.zeros(ECE_BINS))
    recent: _RingBuffer = field(init=False)

    def __post_init__(self) -> None:
        self.recent = _RingBuffer(self.window)

    def update(self, p: FloatArray, y: FloatArray) -> None:
        self.labels += int(p.size)
        self.log_loss_sum += float(log_losses(p, y).sum())
        self.squared_error_sum += float(((p - y) ** 2).sum())
        self.score_sum += float(p.sum())
        self.label_sum += float(y.sum())
        count, score, label = bin_sums(p, y)
        self.bin_count += count
        self.bin_score += score
        self.bin_label += label
        self.recent.extend(p, y)

    def metrics(self) -> Metrics:
        n = self.labels
        wp, wy = self.recent.contents()
        return Metrics(
            labels=n,
            log_loss=self.log_loss_sum / n if n else math.nan,
            brier=self.squared_error_sum / n if n else math.nan,
            ece=ece_from_bins(self.bin_count, self.bin_score, self.bin_label),
            mean_score=self.score_sum / n if n else math.nan,
            positive_rate=self.label_sum / n if n else math.nan,
            window_labels=int(wp.size),
            window_log_loss=log_loss(wp, wy),
            window_brier=brier_score(wp, wy),
            window_ece=expected_calibration_error(wp, wy),
            window_auc=auc(wp, wy),
        )


class PrequentialEvaluator:
    """Accumulates (score, label, region) triples; `snapshot()` gives the figures overall and per region."""

    def __init__(self, window: int = 10_000, max_regions: int = 1_000) -> None:
        if window < 1:
            raise ValueError("window must be at least one label")
        self.window = window
        self.max_regions = max_regions  # a bound on memory, whatever the region labels say
        self._overall = _Scope(window)
        self._regions: dict[str, _Scope] = {}

    def update(self, scores: npt.ArrayLike, labels: npt.ArrayLike, regions: Sequence[str] | None = None) -> None:
        """Record scores given *before* learning from these labels."""
        p = np.asarray(scores, dtype=np.float64).ravel()
        y = np.asarray(labels, dtype=np.float64).ravel()
        if p.shape != y.shape:
            raise ValueError(f"{p.size} scores but {y.size} labels")
        if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
            raise ValueError("scores must be finite probabilities in [0, 1]")
        if not np.all((y == 0) | (y == 1)):
            raise ValueError("labels must be 0 or 1")
        if p.size == 0:
            return
        self._overall.update(p, y)
        if regions is None:
            return
        region_array = np.asarray(regions, dtype=object)
        if region_array.shape != p.shape:
            raise ValueError(f"{p.size} scores but {region_array.size} regions")
        names, inverse = np.unique(region_array.astype(str), return_inverse=True)
        for k, name in enumerate(names.tolist()):
            scope = self._regions.get(name)
            if scope is None:
                if len(self._regions) >= self.max_regions:
                    continue
                scope = self._regions[name] = _Scope(self.window)
            mask = inverse == k
            scope.update(p[mask], y[mask])

    def snapshot(self) -> MetricsSnapshot:
        return MetricsSnapshot(self._overall.metrics(), {name: s.metrics() for name, s in self._regions.items()})


@dataclass(frozen=True, slots=True)
class EvaluationSlice:
    """A deterministic `share` of voters kept out of training (for unbiased evaluation)."""

    share: float = 0.05
    salt: str = "groundswell-evaluation-slice-v1"

    def __post_init__(self) -> None:
        if not 0.0 <= self.share < 1.0:
            raise ValueError("share must be in [0, 1)")
        if not self.salt:
            raise ValueError("a salt is required (changing it draws a new slice)")

    def contains(self, voter_ids: Sequence[str]) -> npt.NDArray[np.bool_]:
        key = hashlib.sha256(self.salt.encode()).digest()  # any salt → a 32-byte BLAKE2b key
        threshold = int(self.share * 2**64)
        draws = [int.from_bytes(hashlib.blake2b(v.encode(), key=key, digest_size=8).digest(), "big") for v in voter_ids]
        return np.fromiter((d < threshold for d in draws), dtype=np.bool_, count=len(draws))
