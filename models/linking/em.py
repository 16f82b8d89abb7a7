"""Expectation-maximisation for the Fellegi-Sunter model on comparison vectors.

The model: a pair is a match with probability `match_share`; given its class, the comparisons are
independent, comparison k taking level l with probability m[k][l] (match) or u[k][l] (non-match).
EM alternates the posterior match probability of every distinct comparison pattern (E) with
weighted level frequencies (M) (Winkler, "Using the EM algorithm for weight computation in the
Fellegi-Sunter model of record linkage", 1988; Jaro, JASA 84(406), 1989).

As in Splink (https://moj-analytical-services.github.io/splink/topic_guides/training/training_rationale.html),
u can be held fixed (estimated beforehand from random pairs) so that EM only learns m and the match
share. Levels listed in `ignored` (a blank field, a neutral level) carry no information: they
count in neither class's likelihood nor in the estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

_PSEUDO_COUNT = 1e-3  # keeps every probability positive: a level unseen in training is not impossible


@dataclass(frozen=True)
class EMResult:
    m: tuple[F64, ...]
    u: tuple[F64, ...]
    match_share: float
    iterations: int
    converged: bool


def _normalise(counts: F64, informative: npt.NDArray[np.bool_]) -> F64:
    counts = np.where(informative, counts + _PSEUDO_COUNT, 0.0)
    total = counts.sum()
    result: F64 = counts / total if total > 0 else np.where(informative, 1.0 / max(1, informative.sum()), 0.0)
    return result


def _start(values: F64, informative: npt.NDArray[np.bool_]) -> F64:
    padded = np.append(np.asarray(values, dtype=np.float64), 0.0)
    padded = np.where(informative, padded, 0.0)
    total = padded.sum()
    if total <= 0:
        raise ValueError("starting probabilities must put some mass on an informative level")
    result: F64 = padded / total
    return result


def expectation_maximisation(
    levels: npt.NDArray[np.integer],
    n_levels: Sequence[int],
    *,
    m: Sequence[F64],
    u: Sequence[F64],
    match_share: float,
    fix_u: bool = False,
    ignored: Sequence[Sequence[int]] = (),
    max_iterations: int = 200,
    tolerance: float = 1e-7,
) -> EMResult:
    """Estimate m (and u unless `fix_u`) and the match share from a (pairs x comparisons) level matrix.

    `n_levels[k]` is the number of levels of comparison k; a level value >= n_levels[k] is a blank
    and ignored. `m`, `u` are starting values (length n_levels[k] each).
    """
    patterns, counts = np.unique(np.asarray(levels, dtype=np.int64), axis=0, return_counts=True)
    counts = counts.astype(np.float64)
    k_count = len(n_levels)
    informative = []
    for k, size in enumerate(n_levels):
        mask = np.ones(size + 1, dtype=bool)
        mask[size] = False  # the blank level
        for level in ignored[k] if k < len(ignored) else ():
            mask[level] = False
        informative.append(mask)
    # One-hot of each pattern's level per comparison, blanks/ignored levels zeroed out.
    onehots = []
    for k, size in enumerate(n_levels):
        column = np.minimum(patterns[:, k], size)
        onehot = np.zeros((patterns.shape[0], size + 1))
        onehot[np.arange(patterns.shape[0]), column] = 1.0
        onehot[:, ~informative[k]] = 0.0
        onehots.append(onehot)

    # Probabilities are of a level *given that the level is informative*, in both classes.
    m_est = [_start(x, informative[k]) for k, x in enumerate(m)]
    u_est = [_start(x, informative[k]) for k, x in enumerate(u)]
    share = float(match_share)
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 - reported in the result
        log_match = np.full(patterns.shape[0], np.log(share))
        log_non = np.full(patterns.shape[0], np.log1p(-share))
        for k in range(k_count):
            with np.errstate(divide="ignore"):
                log_match += onehots[k] @ np.where(informative[k], np.log(np.maximum(m_est[k], 1e-300)), 0.0)
                log_non += onehots[k] @ np.where(informative[k], np.log(np.maximum(u_est[k], 1e-300)), 0.0)
        posterior = 1.0 / (1.0 + np.exp(np.clip(log_non - log_match, -700, 700)))
        weight_match = posterior * counts
        weight_non = (1.0 - posterior) * counts
        new_m = [_normalise(onehots[k].T @ weight_match, informative[k]) for k in range(k_count)]
        new_u = u_est if fix_u else [_normalise(onehots[k].T @ weight_non, informative[k]) for k in range(k_count)]
        new_share = float(np.clip(weight_match.sum() / counts.sum(), 1e-12, 1 - 1e-12))
        change = max(
            abs(new_share - share),
            max(float(np.max(np.abs(a - b))) for a, b in zip(new_m, m_est, strict=True)),
            max(float(np.max(np.abs(a - b))) for a, b in zip(new_u, u_est, strict=True)),
        )
        m_est, u_est, share = new_m, new_u, new_share
        if change < tolerance:
            converged = True
            break
    return EMResult(
        tuple(x[:-1] for x in m_est),
        tuple(x[:-1] for x in u_est),
        share,
        iteration,
        converged,
    )
