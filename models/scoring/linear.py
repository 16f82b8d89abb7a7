"""Scoring a linear logistic model on hashed features: a gather, a row sum and a sigmoid.

Shared by the online learner, loaded artifacts and the push gate, so every path computes the
same numbers. NaN is propagated, never clipped away: a model whose logit overflows must show
up as non-finite output in the gate, not as a quiet 0 or 1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from models.scoring.features import Columns, FeatureSpec, HashedFeatures, Records, RowHasher

FloatArray = npt.NDArray[np.float64]


def logits(coefficients: FloatArray, intercept: float, features: HashedFeatures) -> FloatArray:
    if features.n_features != coefficients.shape[0]:
        raise ValueError(f"features have {features.n_features} columns, the model {coefficients.shape[0]}")
    with np.errstate(over="ignore", invalid="ignore"):
        result: FloatArray = coefficients[features.indices].sum(axis=1) + intercept
    return result


def probabilities(coefficients: FloatArray, intercept: float, features: HashedFeatures) -> FloatArray:
    """P(support) per row, shape (n_rows,)."""
    result: FloatArray = expit(logits(coefficients, intercept, features))
    return result


def logit_bound(coefficients: FloatArray, intercept: float, n_fields: int) -> float:
    """An upper bound on |logit| over every possible row: each row sums `n_fields` coefficients.

    When it is finite, no input can make the model's output NaN.
    """
    largest = float(np.max(np.abs(coefficients))) if coefficients.size else 0.0
    with np.errstate(over="ignore"):
        return abs(intercept) + n_fields * largest


class LinearScorer:
    """Rows in, P(support) out, for one set of coefficients: the in-stream scoring path."""

    def __init__(self, spec: FeatureSpec, coefficients: FloatArray, intercept: float) -> None:
        if coefficients.shape != (spec.n_features,):
            raise ValueError(f"coefficients of shape {coefficients.shape}, the spec needs ({spec.n_features},)")
        self.spec = spec
        self.coefficients = coefficients
        self.intercept = intercept
        self.hasher = RowHasher(spec)

    def score(self, features: HashedFeatures) -> FloatArray:
        return probabilities(self.coefficients, self.intercept, features)

    def score_rows(self, rows: Columns | Records) -> FloatArray:
        return self.score(self.hasher.transform(rows))
