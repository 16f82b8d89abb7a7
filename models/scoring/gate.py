"""The push gate: may this candidate artifact serve? Every check, with a reason a modeller can act on.

Checks, in order (a check that cannot run is "skip", and a skipped required check refuses):

1. integrity: the file loads (artifact.py: size, no pickles, known members, dtypes, finite
   numbers, coefficients matching the manifest's sha256).
2. feature_schema: the candidate's FeatureSpec equals the stream's (else the stream would feed it
   columns that mean something else); the reason lists what differs.
3. holdout: at least `min_holdout_labels` labels with both classes, or nothing below can be judged.
4. outputs: holdout scores are finite and within [0, 1], and |intercept| + n_fields * max|w| is
   finite, so no input whatever can produce NaN.
5. log_loss: below the base-rate predictor's (a constant at the holdout's support rate) and at
   most `max_log_loss_increase` nats above the champion's on the same rows.
6. auc: above 0.5, and at most `max_auc_drop` below the champion's.
7. calibration: ECE (metrics.py: 10 equal-width bins) at most `max_ece`, and at most
   `max_ece_increase` above the champion's.
8. regions: in every region with at least `min_region_labels` holdout labels, log loss at most
   `max_region_log_loss_increase` above the champion's (a model can win overall and fail a region).
9. latency: rows hashed and scored per second (warm, one thread, `latency_batch` rows per call).
   With a champion, the two are timed in alternation on the same batch and the candidate must
   reach `min_speed_vs_champion` of the champion's rate: a ratio within one run, which a busy
   machine does not move the way it moves an absolute rate. Without one (a first push), at least
   `min_rows_per_second`. Reported with its value; never a timing assertion in a test.

Default tolerances: differences are paired (both models on the same rows), so their noise is far
below that of either figure; 0.01 nats of log loss (about 2% of a typical 0.5-0.6), 0.01 of AUC and
0.02 of ECE are the smallest changes a campaign would notice, and the ECE ceiling of 0.05 means no
score decile is off by more than five points on average. 500 labels per region puts the
standard error of a region's log loss near 0.02-0.03, hence the looser per-region tolerance.

Without a champion (the first push), only the absolute checks apply.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from models.scoring.artifact import DEFAULT_MAX_BYTES, ArtifactError, ModelArtifact, load_artifact
from models.scoring.features import Columns, FeatureSpec
from models.scoring.linear import FloatArray, logit_bound
from models.scoring.metrics import auc, expected_calibration_error, log_loss

Status = Literal["pass", "fail", "skip"]
REQUIRED_CHECKS = ("integrity", "feature_schema", "holdout", "outputs", "log_loss", "auc", "calibration", "latency")


@dataclass(frozen=True, slots=True)
class GatePolicy:
    max_log_loss_increase: float = 0.01
    max_auc_drop: float = 0.01
    max_ece: float = 0.05
    max_ece_increase: float = 0.02
    max_region_log_loss_increase: float = 0.03
    min_region_labels: int = 500
    min_holdout_labels: int = 1_000
    min_rows_per_second: float = 100_000.0  # a first push only (no champion to compare with)
    min_speed_vs_champion: float = 0.5
    latency_rows: int = 200_000  # rows scored for the latency measurement (the holdout, repeated)
    latency_batch: int = 5_000  # rows per scoring call in that measurement
    max_artifact_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class Holdout:
    """Labelled rows kept out of training: voter-file and context columns, 0/1 labels, regions."""

    rows: Columns
    labels: npt.NDArray[np.float64]
    regions: Sequence[str] | None = None  # default: the rows' "region" column, if any

    def region_array(self) -> npt.NDArray[np.str_] | None:
        regions = self.regions if self.regions is not None else self.rows.get("region")
        return None if regions is None else np.asarray(regions, dtype=object).astype(str)


@dataclass(frozen=True, slots=True)
class GateCheck:
    name: str
    status: Status
    reason: str
    value: float | None = None
    limit: float | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass(frozen=True)
class GateReport:
    version: str | None  # the candidate's content hash, when it loaded
    checks: tuple[GateCheck, ...]
    metrics: dict[str, float] = field(default_factory=dict)  # candidate (and champion) holdout figures

    @property
    def accepted(self) -> bool:
        by_name = {c.name: c for c in self.checks}
        required_ok = all(name in by_name and by_name[name].passed for name in REQUIRED_CHECKS)
        return required_ok and not any(c.status == "fail" for c in self.checks)

    @property
    def refusals(self) -> list[str]:
        return [f"{c.name}: {c.reason}" for c in self.checks if c.status == "fail"]

    def check(self, name: str) -> GateCheck:
        return next(c for c in self.checks if c.name == name)

    def summary(self) -> str:
        head = f"candidate {self.version[:12] if self.version else '(unreadable)'}: "
        head += "ACCEPTED" if self.accepted else "REFUSED"
        lines = [head] + [f"  {c.status.upper():4s} {c.name}: {c.reason}" for c in self.checks]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "accepted": self.accepted,
            "checks": [
                {"name": c.name, "status": c.status, "reason": c.reason, "value": c.value, "limit": c.limit}
                for c in self.checks
            ],
            "metrics": self.metrics,
        }


class _Checks:
    def __init__(self) -> None:
        self.items: list[GateCheck] = []

    def add(self, name: str, ok: bool, reason: str, value: float | None = None, limit: float | None = None) -> bool:
        self.items.append(GateCheck(name, "pass" if ok else "fail", reason, value, limit))
        return ok

    def skip(self, names: Sequence[str], reason: str) -> None:
        self.items.extend(GateCheck(name, "skip", reason) for name in names)


def evaluate_candidate(
    candidate: bytes | Path | ModelArtifact,
    stream_spec: FeatureSpec,
    holdout: Holdout,
    champion: ModelArtifact | None = None,
    policy: GatePolicy | None = None,
) -> GateReport:
    policy = policy or GatePolicy()
    checks = _Checks()
    later = ("feature_schema", "holdout", "outputs", "log_loss", "auc", "calibration", "regions", "latency")

    try:
        model = (
            candidate
            if isinstance(candidate, ModelArtifact)
            else load_artifact(candidate, max_bytes=policy.max_artifact_bytes)
        )
    except ArtifactError as exc:
        checks.add("integrity", False, f"refused ({exc.code}): {exc}")
        checks.skip(later, "the artifact did not load")
        return GateReport(None, tuple(checks.items))
    checks.add("integrity", True, f"loaded; content hash {model.short_version}")
    metrics: dict[str, float] = {}

    differences = stream_spec.differences(model.spec)
    if not checks.add(
        "feature_schema",
        not differences,
        "matches the stream's spec" if not differences else "stream vs candidate: " + "; ".join(differences),
    ):
        checks.skip(later[1:], "the feature schema does not match the stream's")
        return GateReport(model.version, tuple(checks.items))

    y = np.asarray(holdout.labels, dtype=np.float64)
    n_pos = int((y == 1).sum())
    n_rows = {len(column) for column in holdout.rows.values()}
    aligned = n_rows == {y.size}
    usable = (
        aligned and y.size >= policy.min_holdout_labels and 0 < n_pos < y.size and bool(np.all((y == 0) | (y == 1)))
    )
    if not checks.add(
        "holdout",
        usable,
        f"{y.size} labels, {n_pos} supporters"
        + ("" if aligned else f"; rows have {sorted(n_rows)} entries")
        + ("" if usable else f"; need >= {policy.min_holdout_labels} 0/1 labels of both classes, one per row"),
        float(y.size),
        float(policy.min_holdout_labels),
    ):
        checks.skip(later[2:], "no usable holdout")
        return GateReport(model.version, tuple(checks.items))

    scorer = model.scorer()
    p = scorer.score_rows(holdout.rows)
    bound = logit_bound(model.coefficients, model.intercept, model.spec.n_fields)
    finite = bool(np.all(np.isfinite(p)))
    in_range = finite and bool(np.all((p >= 0.0) & (p <= 1.0)))
    if not finite:
        reason = f"{int(np.count_nonzero(~np.isfinite(p)))} of {p.size} holdout scores are NaN or infinite"
    elif not in_range:
        reason = "scores outside [0, 1]"
    elif not np.isfinite(bound):
        reason = "coefficients so large that some rows' logits overflow to NaN"
    else:
        reason = f"all {p.size} scores finite in [0, 1]; |logit| <= {bound:.3g} for any row"
    if not checks.add("outputs", in_range and bool(np.isfinite(bound)), reason):
        checks.skip(later[3:], "outputs are not valid probabilities")
        return GateReport(model.version, tuple(checks.items))

    champion_p: FloatArray | None = None
    if champion is not None:
        try:
            champion_p = champion.scorer().score_rows(holdout.rows)
        except (KeyError, ValueError) as exc:
            checks.add("champion", False, f"the champion cannot score this holdout ({exc}); push without a champion")
    _compare(checks, metrics, policy, p, y, champion_p, holdout.region_array())
    _latency(checks, metrics, policy, model, holdout.rows, champion)
    return GateReport(model.version, tuple(checks.items), metrics)


def _compare(
    checks: _Checks,
    metrics: dict[str, float],
    policy: GatePolicy,
    p: FloatArray,
    y: FloatArray,
    champion_p: FloatArray | None,
    regions: npt.NDArray[np.str_] | None,
) -> None:
    ll, area, ece = log_loss(p, y), auc(p, y), expected_calibration_error(p, y)
    base = float(y.mean())
    base_ll = log_loss(np.full(y.size, base), y)
    metrics.update(log_loss=ll, auc=area, ece=ece, base_rate_log_loss=base_ll, holdout_labels=float(y.size))
    if champion_p is None:
        checks.add("log_loss", ll < base_ll, f"{ll:.4f} vs {base_ll:.4f} for the base rate; no champion", ll, base_ll)
        checks.add("auc", area > 0.5, f"{area:.4f} (must beat 0.5); no champion", area, 0.5)
        checks.add("calibration", ece <= policy.max_ece, f"ECE {ece:.4f} (max {policy.max_ece})", ece, policy.max_ece)
        checks.skip(("regions",), "no champion to compare regions with")
        return

    c_ll, c_auc, c_ece = log_loss(champion_p, y), auc(champion_p, y), expected_calibration_error(champion_p, y)
    metrics.update(champion_log_loss=c_ll, champion_auc=c_auc, champion_ece=c_ece)
    ll_limit = c_ll + policy.max_log_loss_increase
    checks.add(
        "log_loss",
        ll <= ll_limit and ll < base_ll,
        f"{ll:.4f} vs champion {c_ll:.4f} (max +{policy.max_log_loss_increase}) and base rate {base_ll:.4f}",
        ll,
        ll_limit,
    )
    auc_limit = c_auc - policy.max_auc_drop
    checks.add(
        "auc",
        area >= auc_limit and area > 0.5,
        f"{area:.4f} vs champion {c_auc:.4f} (max drop {policy.max_auc_drop})",
        area,
        auc_limit,
    )
    ece_limit = min(policy.max_ece, c_ece + policy.max_ece_increase)
    checks.add(
        "calibration",
        ece <= ece_limit,
        f"ECE {ece:.4f} vs champion {c_ece:.4f} (max +{policy.max_ece_increase}, ceiling {policy.max_ece})",
        ece,
        ece_limit,
    )
    if regions is None:
        checks.skip(("regions",), "holdout has no regions")
        return
    worse: list[str] = []
    judged = 0
    for region in np.unique(regions).tolist():
        mask = regions == region
        if int(mask.sum()) < policy.min_region_labels:
            continue
        judged += 1
        r_ll, r_champion = log_loss(p[mask], y[mask]), log_loss(champion_p[mask], y[mask])
        if r_ll > r_champion + policy.max_region_log_loss_increase:
            worse.append(f"{region} {r_ll:.4f} vs {r_champion:.4f}")
    if judged == 0:
        checks.skip(("regions",), f"no region has {policy.min_region_labels} holdout labels")
    else:
        checks.add(
            "regions",
            not worse,
            f"{judged} regions judged; log loss worse than the champion's by more than "
            f"{policy.max_region_log_loss_increase} in: {', '.join(worse)}"
            if worse
            else f"{judged} regions judged, none worse by more than {policy.max_region_log_loss_increase}",
        )


def _latency(
    checks: _Checks,
    metrics: dict[str, float],
    policy: GatePolicy,
    model: ModelArtifact,
    rows: Columns,
    champion: ModelArtifact | None,
) -> None:
    n = len(next(iter(rows.values()))) if rows else 0
    if n == 0:
        checks.skip(("latency",), "no rows to time")
        return
    # Batches of a stream-like size, cycling through the holdout: a tiny holdout would otherwise
    # measure per-call overhead rather than the scoring rate.
    cycle = np.arange(policy.latency_batch) % n
    picks = cycle.tolist()
    batch = {
        name: column[cycle] if isinstance(column, np.ndarray) else [column[i] for i in picks]
        for name, column in rows.items()
    }
    scorers = [model.scorer()] + ([] if champion is None else [champion.scorer()])
    for scorer in scorers:
        scorer.score_rows(batch)  # warm the value caches, as in a running stream
    spent = [0.0] * len(scorers)
    done = 0
    while done < policy.latency_rows:  # alternate, so both meet the same moments of a busy machine
        for i, scorer in enumerate(scorers):
            began = time.perf_counter()
            scorer.score_rows(batch)
            spent[i] += time.perf_counter() - began
        done += policy.latency_batch
    rate = done / max(spent[0], 1e-9)
    metrics["rows_per_second"] = rate
    if champion is None:
        checks.add(
            "latency",
            rate >= policy.min_rows_per_second,
            f"{rate:,.0f} rows/s hashed and scored (min {policy.min_rows_per_second:,.0f})",
            rate,
            policy.min_rows_per_second,
        )
        return
    champion_rate = done / max(spent[1], 1e-9)
    metrics["champion_rows_per_second"] = champion_rate
    ratio = rate / champion_rate
    checks.add(
        "latency",
        ratio >= policy.min_speed_vs_champion,
        f"{rate:,.0f} rows/s hashed and scored, {ratio:.2f}x the champion's {champion_rate:,.0f} in the same "
        f"run (min {policy.min_speed_vs_champion}x)",
        ratio,
        policy.min_speed_vs_champion,
    )
