"""The push gate: good candidates pass, each kind of bad one is refused by the right check, with a reason."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from models.scoring.artifact import ModelArtifact
from models.scoring.features import FeatureSpec, RowHasher, bucket
from models.scoring.gate import GatePolicy, Holdout, evaluate_candidate
from models.scoring.online import OnlineLogisticRegression
from models.scoring.simulated import WORLD_SPEC, contact_stream, voter_columns
from streams.simulation.world import build_world

POLICY = GatePolicy(min_rows_per_second=0.0, latency_rows=10_000)  # latency is measured, not asserted, here


@dataclass(frozen=True)
class Setting:
    champion: ModelArtifact
    candidate: ModelArtifact  # trained on more labels than the champion
    holdout: Holdout


@pytest.fixture(scope="module")
def setting() -> Setting:
    world = build_world(9)
    columns = voter_columns(world)

    def train(n_labels: int, seed: int) -> ModelArtifact:
        stream = contact_stream(world, n_labels, seed)
        model = OnlineLogisticRegression(WORLD_SPEC)
        model.partial_fit(RowHasher(WORLD_SPEC).transform({k: v[stream.voters] for k, v in columns.items()}),
                          stream.labels)  # fmt: skip
        return model.to_artifact(f"{n_labels} simulated labels")

    held = contact_stream(world, 8_000, seed=99)
    rows = {k: v[held.voters] for k, v in columns.items()}
    return Setting(train(15_000, 1), train(60_000, 2), Holdout(rows, held.labels))


def with_weights(base: ModelArtifact, coefficients: np.ndarray, intercept: float | None = None) -> ModelArtifact:
    return ModelArtifact.build(coefficients, base.intercept if intercept is None else intercept, base.spec)


def test_a_better_candidate_is_accepted_with_independently_checkable_figures(setting: Setting) -> None:
    report = evaluate_candidate(setting.candidate.to_bytes(), WORLD_SPEC, setting.holdout, setting.champion, POLICY)
    assert report.accepted, report.summary()
    assert report.version == setting.candidate.version
    assert {c.name for c in report.checks} >= {"integrity", "feature_schema", "outputs", "log_loss", "regions"}
    assert report.check("regions").passed  # four regions of ~2000 holdout labels each

    # The same figures, computed without the gate: CSR product, sigmoid, scikit-learn metrics.
    x = RowHasher(WORLD_SPEC).transform(setting.holdout.rows).to_csr()
    y = setting.holdout.labels
    p = expit(x @ setting.candidate.coefficients + setting.candidate.intercept)
    p_champion = expit(x @ setting.champion.coefficients + setting.champion.intercept)
    assert report.metrics["log_loss"] == pytest.approx(sk_log_loss(y, p), rel=1e-9)
    assert report.metrics["champion_log_loss"] == pytest.approx(sk_log_loss(y, p_champion), rel=1e-9)
    assert report.metrics["auc"] == pytest.approx(roc_auc_score(y, p), rel=1e-9)
    assert report.metrics["base_rate_log_loss"] == pytest.approx(sk_log_loss(y, np.full(y.size, y.mean())), rel=1e-9)
    assert report.metrics["rows_per_second"] > 0
    assert "ACCEPTED" in report.summary()


def test_without_a_champion_only_absolute_checks_apply(setting: Setting) -> None:
    report = evaluate_candidate(setting.champion, WORLD_SPEC, setting.holdout, None, POLICY)
    assert report.accepted, report.summary()
    assert report.check("regions").status == "skip"


def test_a_wrong_feature_schema_is_refused_with_the_differences(setting: Setting) -> None:
    stream_spec = FeatureSpec("simulated-v2", 18, WORLD_SPEC.fields[:-1])
    report = evaluate_candidate(setting.candidate, stream_spec, setting.holdout, setting.champion, POLICY)
    assert not report.accepted
    schema = report.check("feature_schema")
    assert schema.status == "fail" and "contact_type" in schema.reason and "simulated-v2" in schema.reason
    assert all(c.status == "skip" for c in report.checks if c.name not in ("integrity", "feature_schema"))


def test_hostile_bytes_fail_integrity_and_nothing_else_runs(setting: Setting) -> None:
    report = evaluate_candidate(pickle.dumps({"coef": [1.0]}), WORLD_SPEC, setting.holdout, setting.champion, POLICY)
    assert not report.accepted and report.version is None
    assert report.check("integrity").status == "fail" and "(pickle)" in report.check("integrity").reason
    assert report.refusals == [f"integrity: {report.check('integrity').reason}"]
    assert "REFUSED" in report.summary()


def test_outputs_that_can_overflow_or_are_nan_are_refused(setting: Setting) -> None:
    w = setting.candidate.coefficients.copy()
    w[bucket("party=D", WORLD_SPEC.hash_bits)] = 1e308
    overflow = evaluate_candidate(with_weights(setting.candidate, w), WORLD_SPEC, setting.holdout, None, POLICY)
    assert not overflow.accepted and "overflow" in overflow.check("outputs").reason

    # A model that does emit NaN (built around the loader's checks, as a buggy exporter might).
    nan_weights = setting.candidate.coefficients.copy()
    nan_weights[bucket("party=R", WORLD_SPEC.hash_bits)] = np.nan
    nan_model = ModelArtifact(nan_weights, 0.0, WORLD_SPEC, {}, {})
    report = evaluate_candidate(nan_model, WORLD_SPEC, setting.holdout, None, POLICY)
    outputs = report.check("outputs")
    assert not report.accepted and outputs.status == "fail" and "NaN" in outputs.reason
    assert report.check("log_loss").status == "skip"


def test_a_worse_candidate_is_refused_on_log_loss_and_auc(setting: Setting) -> None:
    rng = np.random.default_rng(0)
    w = setting.champion.coefficients.copy()
    active = np.flatnonzero(w)
    w[active] += rng.normal(0, 0.8, active.size)
    report = evaluate_candidate(
        with_weights(setting.champion, w), WORLD_SPEC, setting.holdout, setting.champion, POLICY
    )
    assert not report.accepted
    assert report.check("log_loss").status == "fail" and "champion" in report.check("log_loss").reason
    assert report.check("auc").status == "fail"


def test_a_miscalibrated_candidate_is_refused_on_calibration(setting: Setting) -> None:
    shifted = with_weights(setting.candidate, setting.candidate.coefficients, setting.candidate.intercept + 0.8)
    report = evaluate_candidate(shifted, WORLD_SPEC, setting.holdout, setting.champion, POLICY)
    assert not report.accepted
    calibration = report.check("calibration")
    assert calibration.status == "fail" and calibration.value is not None and calibration.limit is not None
    assert calibration.value > calibration.limit
    assert report.check("auc").passed  # ranking is untouched by a shift


def test_a_candidate_worse_in_one_region_is_refused_on_regions(setting: Setting) -> None:
    regions = sorted(set(setting.holdout.rows["region"]))
    w = setting.candidate.coefficients.copy()
    w[bucket(f"region={regions[0]}", WORLD_SPEC.hash_bits)] += 1.0
    report = evaluate_candidate(
        with_weights(setting.candidate, w), WORLD_SPEC, setting.holdout, setting.champion, POLICY
    )
    check = report.check("regions")
    assert not report.accepted and check.status == "fail" and regions[0] in check.reason
    assert all(r not in check.reason.split("in:")[1] for r in regions[1:])


def test_latency_below_the_minimum_is_refused(setting: Setting) -> None:
    policy = GatePolicy(min_rows_per_second=1e15, latency_rows=5_000)  # no machine scores 10^15 rows/s
    report = evaluate_candidate(setting.candidate, WORLD_SPEC, setting.holdout, None, policy)  # a first push
    latency = report.check("latency")
    assert not report.accepted and latency.status == "fail" and "rows/s" in latency.reason


def test_latency_is_judged_against_the_champion_timed_alongside(setting: Setting) -> None:
    # Same model kind and features: about 1x the champion, whatever else the machine is doing.
    lenient = GatePolicy(min_rows_per_second=1e15, min_speed_vs_champion=0.01, latency_rows=10_000)
    report = evaluate_candidate(setting.candidate, WORLD_SPEC, setting.holdout, setting.champion, lenient)
    latency = report.check("latency")
    assert latency.passed and "the champion's" in latency.reason and report.metrics["champion_rows_per_second"] > 0
    strict = GatePolicy(min_speed_vs_champion=1e6, latency_rows=10_000)  # a million times faster: never
    refused = evaluate_candidate(setting.candidate, WORLD_SPEC, setting.holdout, setting.champion, strict)
    assert refused.check("latency").status == "fail" and not refused.accepted


def test_a_holdout_too_small_or_misaligned_is_refused(setting: Setting) -> None:
    rows = {k: v[:50] for k, v in setting.holdout.rows.items()}
    small = evaluate_candidate(setting.candidate, WORLD_SPEC, Holdout(rows, setting.holdout.labels[:50]), None, POLICY)
    assert not small.accepted and small.check("holdout").status == "fail"
    misaligned = evaluate_candidate(setting.candidate, WORLD_SPEC, Holdout(rows, setting.holdout.labels), None, POLICY)
    assert misaligned.check("holdout").status == "fail" and "entries" in misaligned.check("holdout").reason
