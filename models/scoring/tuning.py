"""Tune the online learner's schedule on simulated campaigns: `python -m models.scoring.tuning`.

Each trial streams `--labels` contacts of a simulated world (simulated.py: precinct runs, labels
drawn from the true support) through score-then-learn in mini-batches, and reports the
prequential log loss over all labels, and log loss / AUC / ECE over the last `--window` labels
beside the true model's on the same labels. Scikit-learn's SGDClassifier with its default
"optimal" schedule runs as the reference point the design brief warns about.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import SGDClassifier

from models.scoring.evaluation import PrequentialEvaluator
from models.scoring.features import HashedFeatures, RowHasher
from models.scoring.metrics import auc, expected_calibration_error, log_loss
from models.scoring.online import OnlineLogisticRegression, SGDSettings
from models.scoring.simulated import WORLD_SPEC, ContactStream, contact_stream, voter_columns
from streams.simulation.world import build_world

ADAGRAD_RATES = (0.3, 0.5, 1.0, 2.0)
CONSTANT_RATES = (0.1, 0.3, 1.0, 3.0)
L2_VALUES = (1e-5, 1e-4, 1e-3)
HORIZONS = (None, 10_000, 30_000)


@dataclass(frozen=True)
class TrialResult:
    name: str
    prequential_log_loss: float
    window_log_loss: float
    window_auc: float
    window_ece: float
    true_log_loss: float
    true_auc: float
    true_ece: float


@dataclass(frozen=True)
class Scenario:
    features: HashedFeatures  # one row per contact, in contact order
    stream: ContactStream


def scenario(seed: int, n_labels: int) -> Scenario:
    world = build_world(seed)
    stream = contact_stream(world, n_labels, seed)
    columns = voter_columns(world)
    rows = {name: column[stream.voters] for name, column in columns.items()}
    return Scenario(RowHasher(WORLD_SPEC).transform(rows), stream)


def run_trial(
    name: str, model: OnlineLogisticRegression | SGDClassifier, sc: Scenario, batch: int, window: int
) -> TrialResult:
    evaluator = PrequentialEvaluator(window=window)
    y, n = sc.stream.labels, len(sc.stream)
    csr = sc.features.to_csr() if isinstance(model, SGDClassifier) else None
    for start in range(0, n, batch):
        rows = np.arange(start, min(start + batch, n))
        if isinstance(model, OnlineLogisticRegression):
            part = sc.features.take(rows)
            evaluator.update(model.predict_proba(part), y[rows])
            model.partial_fit(part, y[rows])
        else:
            assert csr is not None
            x = csr[rows]
            p = model.predict_proba(x)[:, 1] if start else np.full(rows.size, 0.5)
            evaluator.update(p, y[rows])
            model.partial_fit(x, y[rows], classes=np.array([0.0, 1.0]))
    m = evaluator.snapshot().overall
    tail = slice(n - window, n)
    truth = sc.stream.true_probability[tail]
    return TrialResult(
        name, m.log_loss, m.window_log_loss, m.window_auc, m.window_ece,
        log_loss(truth, y[tail]), auc(truth, y[tail]), expected_calibration_error(truth, y[tail]),
    )  # fmt: skip


def grid() -> list[tuple[str, SGDSettings]]:
    out: list[tuple[str, SGDSettings]] = []
    for lr, l2, horizon in itertools.product(ADAGRAD_RATES, L2_VALUES, HORIZONS):
        out.append((f"adagrad lr={lr} l2={l2:g} avg={horizon}", SGDSettings("adagrad", lr, l2, horizon)))
    for lr, l2, horizon in itertools.product(CONSTANT_RATES, L2_VALUES, HORIZONS):
        out.append((f"constant lr={lr} l2={l2:g} avg={horizon}", SGDSettings("constant", lr, l2, horizon)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.scoring.tuning", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=20_000)
    parser.add_argument("--batches", type=int, nargs="+", default=[200], help="mini-batch sizes to try")
    parser.add_argument("--only", nargs="+", help="run only configurations whose name contains one of these")
    args = parser.parse_args(argv)
    scenarios = [scenario(seed, args.labels) for seed in args.seeds]
    configs: list[tuple[str, SGDSettings | None]] = [*grid(), ("sklearn SGDClassifier optimal alpha=1e-4", None)]
    print(f"{'configuration':44s} {'batch':>5s} {'preq LL':>8s} {'win LL':>8s} {'true LL':>8s} {'win AUC':>8s} "
          f"{'true AUC':>8s} {'win ECE':>8s} {'true ECE':>8s}")  # fmt: skip
    for (name, settings), batch in itertools.product(configs, args.batches):
        if args.only and not any(text in name for text in args.only):
            continue
        began = time.perf_counter()
        results = []
        for sc in scenarios:
            model: OnlineLogisticRegression | SGDClassifier
            if settings is None:
                model = SGDClassifier(loss="log_loss", alpha=1e-4, learning_rate="optimal", random_state=0)
            else:
                model = OnlineLogisticRegression(WORLD_SPEC, settings)
            results.append(run_trial(name, model, sc, batch, args.window))
        mean = {
            k: float(np.mean([getattr(r, k) for r in results])) for k in TrialResult.__dataclass_fields__ if k != "name"
        }
        print(
            f"{name:44s} {batch:5d} {mean['prequential_log_loss']:8.4f} {mean['window_log_loss']:8.4f} "
            f"{mean['true_log_loss']:8.4f} {mean['window_auc']:8.4f} {mean['true_auc']:8.4f} "
            f"{mean['window_ece']:8.4f} {mean['true_ece']:8.4f}  ({time.perf_counter() - began:.1f}s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
