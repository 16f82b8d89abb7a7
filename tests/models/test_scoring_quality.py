"""On a simulated campaign with a known true model, the online model's AUC and calibration approach the truth.

Margins (measured on worlds 3-6 with these settings: after 60k labels the gap to the true model
over the last 15k was at most 0.009 nats of log loss and 0.008 of AUC, with ECE at most 0.014;
on fresh random voters the scores correlated 0.984-0.985 with the true support). The assertions
allow roughly twice that, so they fail only if learning really degrades.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.scoring.evaluation import PrequentialEvaluator
from models.scoring.features import RowHasher
from models.scoring.metrics import auc, expected_calibration_error, log_loss
from models.scoring.online import OnlineLogisticRegression
from models.scoring.simulated import WORLD_SPEC, contact_stream, voter_columns
from streams.simulation.world import build_world

N_LABELS = 60_000
WINDOW = 15_000
BATCH = 200


@pytest.mark.parametrize("seed", [3, 4])
def test_online_model_approaches_the_true_model(seed: int) -> None:
    world = build_world(seed)
    columns = voter_columns(world)
    stream = contact_stream(world, N_LABELS, seed)
    hasher = RowHasher(WORLD_SPEC)
    features = hasher.transform({k: v[stream.voters] for k, v in columns.items()})
    regions = columns["region"][stream.voters]
    y = stream.labels

    model = OnlineLogisticRegression(WORLD_SPEC)
    evaluator, early = PrequentialEvaluator(window=WINDOW), PrequentialEvaluator(window=WINDOW)
    for start in range(0, N_LABELS, BATCH):
        rows = np.arange(start, min(start + BATCH, N_LABELS))
        batch = features.take(rows)
        scores = model.predict_proba(batch)  # score first ...
        evaluator.update(scores, y[rows], regions[rows].tolist())
        if start < 5_000:
            early.update(scores, y[rows])
        model.partial_fit(batch, y[rows])  # ... then learn

    learned = evaluator.snapshot().overall
    truth_p, truth_y = stream.true_probability[-WINDOW:], y[-WINDOW:]
    true_ll, true_auc = log_loss(truth_p, truth_y), auc(truth_p, truth_y)
    assert learned.window_labels == WINDOW
    assert learned.window_log_loss < true_ll + 0.02
    assert learned.window_auc > true_auc - 0.02
    assert learned.window_ece < 0.03
    assert early.snapshot().overall.log_loss > learned.window_log_loss + 0.02  # it did learn along the way

    # Voters drawn at random from the whole file (not just the contacted runs), labels from the truth.
    rng = np.random.default_rng(seed + 100)
    voters = rng.integers(0, world.n_voters, 20_000)
    p = model.predict_proba(hasher.transform({k: v[voters] for k, v in columns.items()}))
    support = world.support[voters]
    labels = (rng.random(voters.size) < support).astype(np.float64)
    assert np.corrcoef(p, support)[0, 1] > 0.97
    assert auc(p, labels) > auc(support, labels) - 0.02
    assert expected_calibration_error(p, labels) < expected_calibration_error(support, labels) + 0.02
    for region in world.regions:
        mask = columns["region"][voters] == region
        assert auc(p[mask], labels[mask]) > auc(support[mask], labels[mask]) - 0.03, region
