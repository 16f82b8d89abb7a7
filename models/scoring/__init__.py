"""Voter support scoring: hashed features, an online logistic model, prequential metrics, artifacts, the push gate.

Pure numpy/scipy/scikit-learn; no Kafka or ClickHouse. One job per module:

- features.py: `FeatureSpec` (what the columns mean), `RowHasher` (rows → `HashedFeatures`)
- linear.py: scoring a linear model (`LinearScorer`), shared by every path
- online.py: `OnlineLogisticRegression` (mini-batch AdaGrad SGD with averaging), `SGDSettings`
- state.py: the learner's checkpoint bytes (`state_bytes` / `from_state_bytes`), pickle-free
- metrics.py / evaluation.py: log loss, Brier, ECE, AUC; `PrequentialEvaluator`, `EvaluationSlice`
- artifact.py: `ModelArtifact`, `load_artifact` (hostile input refused with `ArtifactError.code`)
- gate.py: `evaluate_candidate` → `GateReport`
- sql.py: `score_sql`, the same score as a ClickHouse expression for bulk rescoring
- simulated.py, tuning.py, bench.py: simulator-backed data, the schedule tuning run, the scoring bench
"""

from models.scoring.artifact import ArtifactError, ModelArtifact, load_artifact
from models.scoring.evaluation import EvaluationSlice, Metrics, MetricsSnapshot, PrequentialEvaluator
from models.scoring.features import DEFAULT_SPEC, FeatureSpec, FieldSpec, HashedFeatures, RowHasher
from models.scoring.gate import GateCheck, GatePolicy, GateReport, Holdout, evaluate_candidate
from models.scoring.linear import LinearScorer
from models.scoring.online import OnlineLogisticRegression, SGDSettings, support_labels
from models.scoring.sql import SqlScore, score_sql

__all__ = [
    "DEFAULT_SPEC",
    "ArtifactError",
    "EvaluationSlice",
    "FeatureSpec",
    "FieldSpec",
    "GateCheck",
    "GatePolicy",
    "GateReport",
    "HashedFeatures",
    "Holdout",
    "LinearScorer",
    "Metrics",
    "MetricsSnapshot",
    "ModelArtifact",
    "OnlineLogisticRegression",
    "PrequentialEvaluator",
    "RowHasher",
    "SGDSettings",
    "SqlScore",
    "evaluate_candidate",
    "load_artifact",
    "score_sql",
    "support_labels",
]
