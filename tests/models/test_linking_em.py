"""EM recovers known Fellegi-Sunter parameters from synthetic comparison vectors."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from models.linking.em import expectation_maximisation

# Three comparisons with 3, 2 and 4 levels; matches agree far more often than non-matches.
TRUE_M = [np.array([0.85, 0.10, 0.05]), np.array([0.90, 0.10]), np.array([0.70, 0.15, 0.10, 0.05])]
TRUE_U = [np.array([0.05, 0.15, 0.80]), np.array([0.20, 0.80]), np.array([0.02, 0.08, 0.30, 0.60])]
TRUE_SHARE = 0.15


def synthetic_pairs(n: int, seed: int, blank_share: float = 0.0) -> npt.NDArray[np.int64]:
    """Comparison vectors drawn from the model itself: class first, then each level independently."""
    rng = np.random.default_rng(seed)
    is_match = rng.random(n) < TRUE_SHARE
    columns = []
    for m, u in zip(TRUE_M, TRUE_U, strict=True):
        levels = np.where(is_match, rng.choice(len(m), n, p=m), rng.choice(len(u), n, p=u))
        blank = rng.random(n) < blank_share
        columns.append(np.where(blank, len(m), levels))  # level len(m) is "blank"
    return np.column_stack(columns)


def _flat_start(sizes: list[int], first: float) -> list[npt.NDArray[np.float64]]:
    return [np.array([first, *([(1 - first) / (s - 1)] * (s - 1))]) for s in sizes]


def test_em_recovers_m_u_and_the_match_share() -> None:
    pairs = synthetic_pairs(200_000, seed=1)
    sizes = [len(m) for m in TRUE_M]
    # Deliberately poor starting values: matches mildly favour the first level, non-matches the last.
    m0 = _flat_start(sizes, 0.6)
    u0 = [x[::-1] for x in _flat_start(sizes, 0.6)]
    result = expectation_maximisation(pairs, sizes, m=m0, u=u0, match_share=0.4)
    assert result.converged
    assert abs(result.match_share - TRUE_SHARE) < 0.01
    for estimated, true in zip(result.m, TRUE_M, strict=True):
        np.testing.assert_allclose(estimated, true, atol=0.02)
    for estimated, true in zip(result.u, TRUE_U, strict=True):
        np.testing.assert_allclose(estimated, true, atol=0.01)


def test_em_with_u_fixed_recovers_m_and_the_share_despite_blanks() -> None:
    pairs = synthetic_pairs(200_000, seed=2, blank_share=0.3)
    sizes = [len(m) for m in TRUE_M]
    result = expectation_maximisation(pairs, sizes, m=_flat_start(sizes, 0.5), u=TRUE_U, match_share=0.5, fix_u=True)
    assert abs(result.match_share - TRUE_SHARE) < 0.01
    for estimated, true in zip(result.m, TRUE_M, strict=True):
        np.testing.assert_allclose(estimated, true, atol=0.02)
    for estimated, true in zip(result.u, TRUE_U, strict=True):
        np.testing.assert_allclose(estimated, true)  # held fixed


def test_ignored_levels_carry_no_information() -> None:
    """Recoding one comparison's level 1 as ignored leaves m and u of the others as before."""
    pairs = synthetic_pairs(100_000, seed=3)
    sizes = [len(m) for m in TRUE_M]
    start = {"m": _flat_start(sizes, 0.6), "u": [x[::-1] for x in _flat_start(sizes, 0.6)], "match_share": 0.3}
    ignoring = expectation_maximisation(pairs, sizes, ignored=[(), (), (1,)], **start)  # type: ignore[arg-type]
    assert ignoring.m[2][1] == 0.0 and ignoring.u[2][1] == 0.0
    # The remaining levels of comparison 2 are renormalised among themselves, in both classes.
    kept = np.array([0, 2, 3])
    np.testing.assert_allclose(ignoring.m[2][kept], TRUE_M[2][kept] / TRUE_M[2][kept].sum(), atol=0.02)
    np.testing.assert_allclose(ignoring.u[2][kept], TRUE_U[2][kept] / TRUE_U[2][kept].sum(), atol=0.01)
    np.testing.assert_allclose(ignoring.m[0], TRUE_M[0], atol=0.02)
