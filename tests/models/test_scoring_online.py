"""The online learner: the same steps as a dense textbook implementation, and scikit-learn's optimum."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from models.scoring.artifact import load_artifact
from models.scoring.features import FeatureSpec, FieldSpec, HashedFeatures, RowHasher
from models.scoring.online import OnlineLogisticRegression, SGDSettings, support_labels
from models.scoring.simulated import WORLD_SPEC, contact_stream, voter_columns
from models.scoring.state import StateError
from streams.simulation.world import build_world

SMALL = FeatureSpec("small", 8, tuple(FieldSpec(f"f{i}") for i in range(6)))  # 256 columns: collisions happen


def random_batch(rng: np.random.Generator, n: int) -> tuple[HashedFeatures, np.ndarray]:
    rows = {f"f{i}": rng.integers(0, 12 + 8 * i, n).tolist() for i in range(6)}
    features = RowHasher(SMALL).transform(rows)
    return features, (rng.random(n) < 0.4).astype(np.float64)


class DenseReference:
    """Mini-batch SGD written the obvious way: dense vectors, X^T r through scipy, L2 on every weight."""

    def __init__(self, size: int, settings: SGDSettings) -> None:
        self.s = settings
        self.w, self.b = np.zeros(size), 0.0
        self.acc, self.acc_b = np.full(size, settings.adagrad_initial), settings.adagrad_initial
        self.avg_w, self.avg_b, self.seen = np.zeros(size), 0.0, 0

    def step(self, features: HashedFeatures, y: np.ndarray) -> None:
        x = features.to_csr()
        r = expit(x @ self.w + self.b) - y
        g = x.T @ r / len(y) + self.s.l2 * self.w
        g_b = r.mean()
        if self.s.schedule == "adagrad":
            self.acc += g * g
            self.acc_b += g_b * g_b
            self.w -= self.s.learning_rate * g / np.sqrt(self.acc)
            self.b -= self.s.learning_rate * g_b / np.sqrt(self.acc_b)
        else:
            self.w -= self.s.learning_rate * g
            self.b -= self.s.learning_rate * g_b
        self.seen += len(y)
        assert self.s.averaging_horizon is not None
        weight = len(y) / min(self.seen, self.s.averaging_horizon)
        self.avg_w += weight * (self.w - self.avg_w)
        self.avg_b += weight * (self.b - self.avg_b)


@pytest.mark.parametrize("schedule", ["adagrad", "constant"])
def test_steps_equal_a_dense_reference(schedule: str) -> None:
    settings = SGDSettings(schedule, learning_rate=0.3, l2=0.05, averaging_horizon=500, max_batch=10_000)  # type: ignore[arg-type]
    rng = np.random.default_rng(11)
    model, reference = OnlineLogisticRegression(SMALL, settings), DenseReference(SMALL.n_features, settings)
    for size in (1, 7, 64, 200, 3, 150, 90, 400, 17):
        features, y = random_batch(rng, size)
        model.partial_fit(features, y)
        reference.step(features, y)
    np.testing.assert_allclose(model.coefficients, reference.avg_w, rtol=1e-10, atol=1e-12)
    assert model.intercept == pytest.approx(reference.avg_b, rel=1e-10, abs=1e-12)
    probe, _ = random_batch(rng, 100)
    expected = expit(probe.to_csr() @ reference.avg_w + reference.avg_b)
    np.testing.assert_allclose(model.predict_proba(probe), expected, rtol=1e-10)
    assert model.n_labels == 1 + 7 + 64 + 200 + 3 + 150 + 90 + 400 + 17


def test_large_batches_are_learned_as_max_batch_steps() -> None:
    settings = SGDSettings(max_batch=50)
    rng = np.random.default_rng(5)
    features, y = random_batch(rng, 230)
    whole, pieces = OnlineLogisticRegression(SMALL, settings), OnlineLogisticRegression(SMALL, settings)
    whole.partial_fit(features, y)
    for start in range(0, 230, 50):
        part = np.arange(start, min(start + 50, 230))
        pieces.partial_fit(features.take(part), y[part])
    np.testing.assert_array_equal(whole.coefficients, pieces.coefficients)
    assert whole.n_batches == pieces.n_batches == 5


@pytest.fixture(scope="module")
def small_world_data() -> tuple[FeatureSpec, HashedFeatures, np.ndarray]:
    world = build_world(5, precincts=40, counties=4, regions=2, voters_per_precinct=200)
    spec = FeatureSpec("validation", 14, WORLD_SPEC.fields)
    stream = contact_stream(world, 4000, seed=5)
    columns = voter_columns(world)
    features = RowHasher(spec).transform({k: v[stream.voters] for k, v in columns.items()})
    return spec, features, stream.labels


def fit_epochs(spec: FeatureSpec, features: HashedFeatures, y: np.ndarray, l2: float) -> OnlineLogisticRegression:
    model = OnlineLogisticRegression(
        spec, SGDSettings(learning_rate=1.0, l2=l2, averaging_horizon=40_000, max_batch=100)
    )
    rng = np.random.default_rng(0)
    for _ in range(100):
        order = rng.permutation(len(y))
        model.partial_fit(features.take(order), y[order])
    return model


def test_many_passes_reach_scikit_learns_optimum(
    small_world_data: tuple[FeatureSpec, HashedFeatures, np.ndarray],
) -> None:
    """Same objective: mean log loss + l2/2 ||w||^2 is LogisticRegression with C = 1 / (l2 n).

    scikit-learn sees only the columns some row uses (the others have zero weight either way),
    which keeps its L-BFGS fast.
    """
    spec, features, y = small_world_data
    active = np.unique(features.indices)
    x = features.to_csr()[:, active]
    for l2, p_tolerance in ((1e-2, 0.005), (1e-3, 0.01)):
        reference = LogisticRegression(C=1.0 / (l2 * len(y)), tol=1e-10, max_iter=100_000).fit(x, y)
        model = fit_epochs(spec, features, y, l2)
        p, p_ref = model.predict_proba(features), reference.predict_proba(x)[:, 1]
        assert np.abs(p - p_ref).max() < p_tolerance
        assert np.count_nonzero(model.coefficients) <= active.size  # untouched columns stay 0
        if l2 == 1e-2:  # strongly convex enough for the weights themselves to settle
            assert np.abs(model.coefficients[active] - reference.coef_[0]).max() < 0.02
            assert abs(model.intercept - reference.intercept_[0]) < 0.02


def test_artifact_scores_like_the_model_and_warm_start_resumes() -> None:
    rng = np.random.default_rng(2)
    model = OnlineLogisticRegression(SMALL)
    features, y = random_batch(rng, 500)
    model.partial_fit(features, y)
    artifact = load_artifact(model.to_artifact("unit test", {"log_loss": 0.6}).to_bytes())
    np.testing.assert_array_equal(artifact.predict_proba(features), model.predict_proba(features))
    assert artifact.training["n_labels"] == 500 and artifact.training["schedule"] == "adagrad"
    resumed = OnlineLogisticRegression(SMALL)
    resumed.warm_start(artifact.coefficients, artifact.intercept, n_labels=500)
    np.testing.assert_array_equal(resumed.predict_proba(features), model.predict_proba(features))
    resumed.partial_fit(features, y)  # learns on from there
    assert not np.array_equal(resumed.coefficients, artifact.coefficients)


def test_bad_inputs_are_refused() -> None:
    model = OnlineLogisticRegression(SMALL)
    features, _ = random_batch(np.random.default_rng(0), 4)
    with pytest.raises(ValueError, match="0 or 1"):
        model.partial_fit(features, [0, 1, 2, 1])
    with pytest.raises(ValueError, match="labels of shape"):
        model.partial_fit(features, [0, 1])
    with pytest.raises(ValueError, match="columns"):
        model.partial_fit(HashedFeatures(features.indices, 512), [0, 1, 0, 1])
    model.partial_fit(features.take(np.array([], dtype=np.int64)), [])  # an empty batch is a no-op
    assert model.n_labels == 0
    with pytest.raises(ValueError):
        SGDSettings(learning_rate=0)
    with pytest.raises(ValueError):
        SGDSettings(averaging_horizon=0)


def test_support_levels_become_labels() -> None:
    np.testing.assert_array_equal(support_labels([1, 2, 3, 4, 5]), [1, 1, 0, 0, 0])
    with pytest.raises(ValueError):
        support_labels([0, 2])


def test_a_checkpoint_resumes_learning_exactly() -> None:
    rng = np.random.default_rng(8)
    settings = SGDSettings(learning_rate=0.5, averaging_horizon=300, max_batch=64)
    uninterrupted = OnlineLogisticRegression(SMALL, settings)
    batches = [random_batch(rng, size) for size in (100, 40, 250, 90, 130)]
    for features, y in batches[:3]:
        uninterrupted.partial_fit(features, y)
    data = uninterrupted.state_bytes()
    restored = OnlineLogisticRegression.from_state_bytes(SMALL, data)
    assert restored.settings == settings and restored.n_labels == 390 and restored.n_batches == uninterrupted.n_batches
    for features, y in batches[3:]:
        uninterrupted.partial_fit(features, y)
        restored.partial_fit(features, y)
    np.testing.assert_array_equal(restored.coefficients, uninterrupted.coefficients)
    assert restored.intercept == uninterrupted.intercept
    assert len(data) < 64 * 1024  # only the active columns are stored


def test_bad_checkpoints_are_refused(tmp_path: Path) -> None:
    model = OnlineLogisticRegression(SMALL)
    model.partial_fit(*random_batch(np.random.default_rng(1), 50))
    good = model.state_bytes()
    other_spec = FeatureSpec("other", 8, SMALL.fields)
    with pytest.raises(StateError, match="another feature spec"):
        OnlineLogisticRegression.from_state_bytes(other_spec, good)
    with np.load(io.BytesIO(good), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}

    def rewritten(compress: bool = False, **changes: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        (np.savez_compressed if compress else np.savez)(buffer, **{**arrays, **changes})
        return buffer.getvalue()

    bad_w = arrays["w"].copy()
    bad_w[0] = np.nan
    marker = tmp_path / "ran"
    objects = np.empty(arrays["w"].shape, dtype=object)
    objects[:] = [Exploit(marker)] * objects.size
    for data, reason in [
        (rewritten(compress=True), "uncompressed"),
        (rewritten(w=bad_w), "finite"),
        (rewritten(w=objects), "cannot be read"),
        (rewritten(active=arrays["active"] + SMALL.n_features), "out of range"),
        (rewritten(extra=np.zeros(2)), "members"),
        (pickle.dumps(Exploit(marker)), "not an npz"),
    ]:
        with pytest.raises(StateError, match=reason):
            OnlineLogisticRegression.from_state_bytes(SMALL, data)
    assert not marker.exists()


class Exploit:
    """Unpickling this creates a directory: proof that a loader ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))
