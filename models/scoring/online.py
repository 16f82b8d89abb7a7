"""Online logistic regression on hashed features, by mini-batch SGD on log loss with L2.

Objective, per label: mean log loss + l2/2 * ||w||^2 (intercept not penalised), i.e.
scikit-learn's LogisticRegression with C = 1 / (l2 * n_labels). Each step follows one mini-batch
gradient; batches larger than `max_batch` are learned as several steps, so how the stream happens
to batch labels barely changes the fit. Only coordinates some row has touched can be non-zero,
so the optimiser state is updated on that active set alone: exact (untouched weights stay 0
under L2), and a step costs O(batch + distinct keys seen) rather than O(2**hash_bits).

Schedule: AdaGrad per coordinate (Duchi, Hazan & Singer, JMLR 12, 2011), lr 1.0, with iterate
averaging (Polyak & Juditsky, SIAM J. Control Optim. 30, 1992): a uniform average over the first
`averaging_horizon` labels, then an exponential moving average with that horizon, so the scores
keep following a campaign whose voters move. The average scores; the raw iterate only learns.

How it was chosen (`python -m models.scoring.tuning --seeds 1 2 3 --batches 1 20 200 2000`):
three simulated worlds, 100k contacts each in precinct runs of 30, labels drawn from the true
support. Figures over the last 20k labels, prequential (each scored before it was learned);
the true model on the same labels: log loss 0.5087, AUC 0.8296, ECE 0.0082.

    schedule (l2 = 1e-4)            batch 1               batch 20              batch 200             batch 2000
                                    LL     AUC    ECE     LL     AUC    ECE     LL     AUC    ECE     LL     AUC    ECE
    AdaGrad 1.0, avg 30k (chosen)   .5134  .8257  .012    .5132  .8257  .009    .5139  .8250  .007    .5140  .8249  .007
    AdaGrad 1.0, no averaging       .5231  .8191  .018    .5221  .8197  .018    .5168  .8224  .008    .5177  .8217  .015
    AdaGrad 0.5, avg 30k            .5123  .8264  .008    .5124  .8263  .007    .5154  .8237  .009    .5154  .8237  .009
    constant 1.0, avg 30k           .7079  .8191  .137    .5143  .8249  .014    .5165  .8226  .010    .5165  .8225  .010
    constant 1.0, no averaging      1.283  .7279  .246    .5371  .8111  .029    .5175  .8210  .005    .5187  .8199  .010
    sklearn SGDClassifier "optimal" n/a                   .5437  .8076  .035    .5436  .8072  .035    .5434  .8085  .038

- A constant rate good for batches of 200 diverges for single labels (the stream's batch size
  follows the traffic); AdaGrad's per-coordinate steps shrink on their own and hold up from 1 to
  2000. Averaging buys ~0.005-0.01 nats and ~0.005 AUC at every batch size.
- A wider grid at batch 200 on two worlds (AdaGrad lr 0.03-4, constant 0.01-3, l2 1e-6 to 1e-3,
  horizons none/10k/30k/50k): lr 0.03 is far too slow (window LL 0.55, ECE 0.09 after 100k labels),
  lr 0.1 still lags (LL 0.518-0.533), AdaGrad lr 4 overshoots (LL 0.516-0.541, ECE 0.02-0.03);
  l2 <= 1e-4 changes nothing measurable (< 0.0002 nats), 1e-3 costs 0.001-0.003.
- scikit-learn's "optimal" schedule (alpha 1e-4, its default; per-label steps) is poorly
  calibrated (ECE 0.035-0.038) and starts badly (prequential log loss 0.73-0.79 over the whole
  run, against 0.517 here), as the design brief warned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from models.scoring.artifact import ModelArtifact
from models.scoring.features import FeatureSpec, HashedFeatures
from models.scoring.linear import FloatArray, probabilities
from models.scoring.state import LearnerState, StateError, decode_state

Schedule = Literal["adagrad", "constant"]


@dataclass(frozen=True, slots=True)
class SGDSettings:
    """Hyper-parameters of the online learner (defaults are the tuned ones)."""

    schedule: Schedule = "adagrad"
    learning_rate: float = 1.0
    l2: float = 1e-4
    averaging_horizon: int | None = 30_000  # labels; None scores with the raw iterate
    adagrad_initial: float = 0.1  # starting accumulator: bounds the very first steps at lr/sqrt(0.1)
    max_batch: int = 200  # larger batches are learned as several steps, so the cadence does not change the fit

    def __post_init__(self) -> None:
        if self.schedule not in ("adagrad", "constant"):
            raise ValueError(f"schedule must be adagrad or constant, not {self.schedule!r}")
        if not self.learning_rate > 0 or self.l2 < 0 or not self.adagrad_initial > 0:
            raise ValueError("learning_rate and adagrad_initial must be positive, l2 non-negative")
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if self.averaging_horizon is not None and self.averaging_horizon < 1:
            raise ValueError("averaging_horizon must be a positive number of labels, or None")

    def describe(self) -> dict[str, Any]:
        return {
            "algorithm": "mini-batch SGD, logistic loss, L2",
            "schedule": self.schedule,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            "averaging_horizon": self.averaging_horizon,
            "adagrad_initial": self.adagrad_initial,
            "max_batch": self.max_batch,
        }


def support_labels(levels: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Canvass support levels 1-5 → labels: 1 for supporters (levels 1-2), else 0."""
    array = np.asarray(levels)
    if array.size and (array.min() < 1 or array.max() > 5):
        raise ValueError("support levels must be 1..5")
    return (array <= 2).astype(np.float64)


class OnlineLogisticRegression:
    """A support model that learns one mini-batch at a time and scores with averaged weights."""

    def __init__(self, spec: FeatureSpec, settings: SGDSettings | None = None) -> None:
        self.spec = spec
        self.settings = settings or SGDSettings()
        size = spec.n_features
        self._w = np.zeros(size)  # the SGD iterate
        self._b = 0.0
        self._avg_w = np.zeros(size)  # what scores
        self._avg_b = 0.0
        self._acc = np.full(size, self.settings.adagrad_initial)  # AdaGrad sums of squared gradients
        self._acc_b = self.settings.adagrad_initial
        self._position = np.full(size, -1, dtype=np.int64)  # column → index in _active, or -1
        self._active = np.empty(0, dtype=np.int64)
        self.n_labels = 0
        self.n_batches = 0

    # --- scoring -----------------------------------------------------------------------------
    @property
    def coefficients(self) -> FloatArray:
        return self._avg_w if self.settings.averaging_horizon is not None else self._w

    @property
    def intercept(self) -> float:
        return self._avg_b if self.settings.averaging_horizon is not None else self._b

    def predict_proba(self, features: HashedFeatures) -> FloatArray:
        """P(support) per row, shape (n_rows,) (not scikit-learn's two columns)."""
        return probabilities(self.coefficients, self.intercept, features)

    # --- learning ----------------------------------------------------------------------------
    def partial_fit(self, features: HashedFeatures, labels: npt.ArrayLike) -> None:
        """Learn from these rows (labels 0/1): one SGD step per `max_batch` rows, in order."""
        y = np.asarray(labels, dtype=np.float64)
        n = features.n_rows
        if y.shape != (n,):
            raise ValueError(f"{n} rows but labels of shape {y.shape}")
        if not np.all((y == 0.0) | (y == 1.0)):
            raise ValueError("labels must be 0 or 1")
        if features.n_features != self.spec.n_features:
            raise ValueError(f"features have {features.n_features} columns, the model {self.spec.n_features}")
        step = self.settings.max_batch
        for start in range(0, n, step):
            self._step(features.indices[start : start + step], y[start : start + step])

    def _step(self, indices: npt.NDArray[np.int32], y: FloatArray) -> None:
        n = indices.shape[0]
        residual = expit(self._w[indices].sum(axis=1) + self._b) - y

        # Data gradient on the distinct columns of the batch (a column twice in a row counts twice).
        columns, inverse = np.unique(indices.astype(np.int64), return_inverse=True)
        data_grad = np.bincount(inverse.ravel(), weights=np.repeat(residual, indices.shape[1]), minlength=len(columns))
        self._activate(columns)
        active = self._active
        grad = self.settings.l2 * self._w[active]
        grad[self._position[columns]] += data_grad / n
        grad_b = float(residual.mean())

        lr = self.settings.learning_rate
        if self.settings.schedule == "adagrad":
            acc = self._acc[active] + grad * grad
            self._acc[active] = acc
            self._w[active] -= lr * grad / np.sqrt(acc)
            self._acc_b += grad_b * grad_b
            self._b -= lr * grad_b / float(np.sqrt(self._acc_b))
        else:
            self._w[active] -= lr * grad
            self._b -= lr * grad_b

        self.n_labels += n
        self.n_batches += 1
        horizon = self.settings.averaging_horizon
        if horizon is not None:
            # Uniform average of iterates (weighted by batch size) until `horizon` labels, then an EMA.
            weight = n / min(self.n_labels, horizon)
            self._avg_w[active] += weight * (self._w[active] - self._avg_w[active])
            self._avg_b += weight * (self._b - self._avg_b)

    def _activate(self, columns: npt.NDArray[np.int64]) -> None:
        new = columns[self._position[columns] < 0]
        if new.size:
            self._position[new] = np.arange(self._active.size, self._active.size + new.size)
            self._active = np.concatenate([self._active, new])

    # --- persistence -------------------------------------------------------------------------
    def warm_start(self, coefficients: FloatArray, intercept: float, n_labels: int = 0) -> None:
        """Start from a pushed model's weights (iterate and average); AdaGrad sums start afresh."""
        if coefficients.shape != (self.spec.n_features,):
            raise ValueError(f"coefficients of shape {coefficients.shape}, expected ({self.spec.n_features},)")
        self._w = coefficients.astype(np.float64, copy=True)
        self._avg_w = self._w.copy()
        self._b = self._avg_b = float(intercept)
        self._position.fill(-1)
        self._active = np.empty(0, dtype=np.int64)
        self._activate(np.flatnonzero(self._w).astype(np.int64))
        self._acc.fill(self.settings.adagrad_initial)
        self._acc_b = self.settings.adagrad_initial
        self.n_labels = n_labels
        self.n_batches = 0

    def state_bytes(self) -> bytes:
        """Everything needed to carry on learning exactly here (state.py), without pickle."""
        active = self._active
        return LearnerState(
            self.spec.fingerprint, asdict(self.settings), active.copy(), self._w[active], self._avg_w[active],
            self._acc[active], self._b, self._avg_b, self._acc_b, self.n_labels, self.n_batches,
        ).encode()  # fmt: skip

    @classmethod
    def from_state_bytes(
        cls, spec: FeatureSpec, data: bytes, settings: SGDSettings | None = None
    ) -> OnlineLogisticRegression:
        """A learner restored from `state_bytes()`; its saved settings unless `settings` is given."""
        state = decode_state(data, spec.fingerprint, spec.n_features)
        if settings is None:
            known = {f.name for f in fields(SGDSettings)}
            if set(state.settings) - known:
                raise StateError(f"unknown settings in checkpoint: {sorted(set(state.settings) - known)}")
            try:
                settings = SGDSettings(**state.settings)
            except (TypeError, ValueError) as exc:
                raise StateError(f"checkpoint settings are invalid: {exc}") from exc
        model = cls(spec, settings)
        model._activate(state.active)
        model._w[state.active] = state.w
        model._avg_w[state.active] = state.avg_w
        model._acc[state.active] = state.acc
        model._b, model._avg_b, model._acc_b = state.b, state.avg_b, state.acc_b
        model.n_labels, model.n_batches = state.n_labels, state.n_batches
        return model

    def describe(self) -> dict[str, Any]:
        return {**self.settings.describe(), "n_labels": self.n_labels, "n_batches": self.n_batches}

    def to_artifact(
        self, description: str = "online model", metrics: Mapping[str, float | None] | None = None
    ) -> ModelArtifact:
        """The scoring weights (the average) as an immutable artifact."""
        return ModelArtifact.build(
            coefficients=self.coefficients,
            intercept=self.intercept,
            spec=self.spec,
            training={"description": description, **self.describe()},
            metrics=dict(metrics or {}),
        )
