"""Prequential metrics against scikit-learn and slow loops; the evaluation slice."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.metrics import log_loss as sk_log_loss

from models.scoring.evaluation import EvaluationSlice, PrequentialEvaluator
from models.scoring.metrics import auc, brier_score, expected_calibration_error, log_loss


def slow_ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Row by row: bin b holds b/10 <= p < (b+1)/10, and p = 1 joins the last bin."""
    members: list[list[int]] = [[] for _ in range(bins)]
    for i, score in enumerate(p.tolist()):
        b = bins - 1 if score >= 1.0 else math.floor(score * bins)
        members[b].append(i)
    total = 0.0
    for rows in members:
        if rows:
            total += len(rows) / len(p) * abs(sum(y[i] for i in rows) / len(rows) - sum(p[i] for i in rows) / len(rows))
    return total


def slow_auc(p: np.ndarray, y: np.ndarray) -> float:
    """Every (supporter, non-supporter) pair: 1 if ranked right, 1/2 if tied."""
    pos, neg = p[y == 1], p[y == 0]
    wins = sum(float(a > b) + 0.5 * float(a == b) for a in pos.tolist() for b in neg.tolist())
    return wins / (len(pos) * len(neg))


def sample(rng: np.random.Generator, n: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(0.01, 0.99, n)
    if ties:
        p = np.round(p, 1)  # many exact ties, and scores exactly on bin edges
        p = np.clip(p, 0.05, 1.0)
    y = (rng.random(n) < p).astype(np.float64)
    return p, y


@pytest.mark.parametrize("ties", [False, True])
def test_metrics_equal_independent_computations(ties: bool) -> None:
    p, y = sample(np.random.default_rng(1), 700, ties)
    assert log_loss(p, y) == pytest.approx(sk_log_loss(y, p), rel=1e-12)
    assert brier_score(p, y) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert auc(p, y) == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert auc(p, y) == pytest.approx(slow_auc(p, y), rel=1e-12)
    assert expected_calibration_error(p, y) == pytest.approx(slow_ece(p, y), rel=1e-12)


def test_edge_cases_are_nan_not_errors() -> None:
    assert math.isnan(log_loss([], []))
    assert math.isnan(auc([0.2, 0.7], [1, 1]))  # one class only
    assert math.isnan(expected_calibration_error([], []))
    assert log_loss([1.0], [0.0]) == pytest.approx(34.54, abs=0.01)  # a certain mistake costs -log(1e-15), not inf


def test_prequential_figures_equal_direct_computation_overall_windowed_and_by_region() -> None:
    rng = np.random.default_rng(7)
    n, window = 5000, 1200
    p, y = sample(rng, n)
    regions = rng.choice(["North", "South", "East"], n, p=[0.5, 0.3, 0.2])
    evaluator = PrequentialEvaluator(window=window)
    start = 0
    for size in [1, 3, 250, 1500, 7, 1199, 1201, 839]:  # batches smaller and larger than the window
        evaluator.update(p[start : start + size], y[start : start + size], regions[start : start + size].tolist())
        start += size
    assert start == n
    snapshot = evaluator.snapshot()

    def check(metrics: object, mask: np.ndarray) -> None:
        pm, ym = p[mask], y[mask]
        tail_p, tail_y = pm[-window:], ym[-window:]
        m = metrics
        assert m.labels == mask.sum()  # type: ignore[attr-defined]
        assert m.log_loss == pytest.approx(sk_log_loss(ym, pm), rel=1e-10)  # type: ignore[attr-defined]
        assert m.brier == pytest.approx(brier_score_loss(ym, pm), rel=1e-10)  # type: ignore[attr-defined]
        assert m.ece == pytest.approx(slow_ece(pm, ym), rel=1e-10)  # type: ignore[attr-defined]
        assert m.mean_score == pytest.approx(pm.mean()) and m.positive_rate == pytest.approx(ym.mean())  # type: ignore[attr-defined]
        assert m.window_labels == min(window, mask.sum())  # type: ignore[attr-defined]
        assert m.window_log_loss == pytest.approx(sk_log_loss(tail_y, tail_p), rel=1e-10)  # type: ignore[attr-defined]
        assert m.window_brier == pytest.approx(brier_score_loss(tail_y, tail_p), rel=1e-10)  # type: ignore[attr-defined]
        assert m.window_ece == pytest.approx(slow_ece(tail_p, tail_y), rel=1e-10)  # type: ignore[attr-defined]
        assert m.window_auc == pytest.approx(roc_auc_score(tail_y, tail_p), rel=1e-10)  # type: ignore[attr-defined]

    check(snapshot.overall, np.ones(n, dtype=bool))
    assert sorted(snapshot.regions) == ["East", "North", "South"]
    for region, metrics in snapshot.regions.items():
        check(metrics, regions == region)

    rows = snapshot.rows()
    assert ("", "window_auc", snapshot.overall.window_auc) in rows
    assert ("South", "labels", float(snapshot.regions["South"].labels)) in rows
    assert len(rows) == 4 * len(snapshot.overall.as_dict())


def test_evaluator_refuses_invalid_scores_and_starts_empty() -> None:
    evaluator = PrequentialEvaluator(window=10)
    empty = evaluator.snapshot().overall
    assert empty.labels == 0 and math.isnan(empty.log_loss) and math.isnan(empty.window_auc)
    with pytest.raises(ValueError):
        evaluator.update([0.5, float("nan")], [0, 1])
    with pytest.raises(ValueError):
        evaluator.update([0.5, 1.2], [0, 1])
    with pytest.raises(ValueError):
        evaluator.update([0.5], [2])
    assert evaluator.snapshot().overall.labels == 0


def test_region_count_is_bounded() -> None:
    evaluator = PrequentialEvaluator(window=5, max_regions=2)
    evaluator.update([0.2, 0.4, 0.6], [0, 1, 1], ["a", "b", "c"])
    snapshot = evaluator.snapshot()
    assert len(snapshot.regions) == 2 and snapshot.overall.labels == 3


def test_evaluation_slice_is_deterministic_salted_and_the_configured_share() -> None:
    ids = [f"V{i:08d}" for i in range(1, 40_001)]
    chosen = EvaluationSlice(0.05, "salt-a").contains(ids)
    # Binomial(40000, 0.05): sd = 43.6 voters; allow 5 sd.
    assert abs(int(chosen.sum()) - 2000) < 5 * math.sqrt(40_000 * 0.05 * 0.95)
    np.testing.assert_array_equal(EvaluationSlice(0.05, "salt-a").contains(ids), chosen)  # same in every worker
    reversed_ids = list(reversed(ids))
    np.testing.assert_array_equal(EvaluationSlice(0.05, "salt-a").contains(reversed_ids), chosen[::-1])
    other = EvaluationSlice(0.05, "salt-b").contains(ids)
    overlap = int((chosen & other).sum())
    assert overlap < 2 * 40_000 * 0.05 * 0.05 + 5 * math.sqrt(100)  # independent draws overlap ~100
    assert not EvaluationSlice(0.0, "x").contains(ids).any()
    with pytest.raises(ValueError):
        EvaluationSlice(1.0)
