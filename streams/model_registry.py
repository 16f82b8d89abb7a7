"""Model operations a modeller runs: push (through the gate), list, promote, rollback, shadow; bulk rescoring.

Blocking, on one ClickHouse client: the HTTP views run these on a read thread. An alias move is
announced on the control topic by the caller (streams/app.py), so every worker's scoring agent
swaps between two batches.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from clickhouse_connect.driver.client import Client

from models.scoring import DEFAULT_SPEC, FeatureSpec
from models.scoring.artifact import ArtifactError, ModelArtifact, load_artifact
from models.scoring.evaluation import EvaluationSlice
from models.scoring.gate import GatePolicy, GateReport, Holdout, evaluate_candidate
from models.scoring.online import OnlineLogisticRegression, support_labels
from models.scoring.sql import score_sql
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.models import ALIASES, ModelRegistryStore
from sinks.clickhouse.scoring import VOTER_COLUMNS
from streams.scoring import SCORING_GROUP

MODEL = "support"
HOLDOUT_ROWS = 50_000


class ModelOpError(ValueError):
    """A refused operation; `status` is the HTTP status that fits (400, 404, 409, 422)."""

    def __init__(self, status: int, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or {}


@dataclass(frozen=True)
class RescoreResult:
    version: str
    voters: int
    seconds: float

    @property
    def voters_per_s(self) -> float:
        return self.voters / self.seconds if self.seconds > 0 else 0.0


class ModelRegistry:
    def __init__(self, client: Client, warehouse: Warehouse, stream_spec: FeatureSpec = DEFAULT_SPEC) -> None:
        self._client = client
        self._db = warehouse.topology.database
        self.store = ModelRegistryStore(client, warehouse)
        self.stream_spec = stream_spec

    # --- push ---------------------------------------------------------------------------------

    def push(self, data: bytes, by: str, policy: GatePolicy | None = None) -> GateReport:
        """Validate through the gate; an accepted version is stored (not promoted). Refused: ModelOpError 422."""
        champion = self.serving_champion()
        report = evaluate_candidate(data, self.stream_spec, self.holdout(), champion, policy)
        if not report.accepted:
            raise ModelOpError(422, "refused: " + "; ".join(report.refusals), report.as_dict())
        artifact = load_artifact(data)
        self.store.add_version(
            artifact.version, MODEL, artifact.to_bytes(), json.dumps(artifact.manifest(), sort_keys=True),
            artifact.spec.fingerprint, json.dumps(report.as_dict(), default=str), by,
        )  # fmt: skip
        return report

    def holdout(self) -> Holdout:
        """Recent IDs of voters in the evaluation slice (kept out of every online model's training),
        topped up with other recent IDs when the slice has too few."""
        columns = ", ".join(f"v.{c} AS {c}" for c in VOTER_COLUMNS)
        result = self._client.query(
            f"""
            SELECT c.voter_id AS voter_id, c.support_level AS support_level, c.contact_type AS contact_type,
                   c.precinct_id AS precinct_id, c.county AS county, c.region AS region, {columns}
            FROM (SELECT voter_id, support_level, contact_type, precinct_id, county, region
                  FROM {self._db}.raw_canvass WHERE support_level IS NOT NULL AND voter_id != ''
                  ORDER BY ingested_at DESC LIMIT {HOLDOUT_ROWS}) AS c
            INNER JOIN (SELECT voter_id, {", ".join(VOTER_COLUMNS)} FROM {self._db}.voters FINAL) AS v
            ON c.voter_id = v.voter_id
            """
        )
        names = result.column_names
        rows = result.result_rows
        in_slice = EvaluationSlice().contains([str(r[0]) for r in rows])
        order = np.argsort(~in_slice, kind="stable")  # slice rows first
        keep = order[: max(int(in_slice.sum()), min(len(rows), 20_000))]
        columns_out = {name: [rows[i][j] for i in keep] for j, name in enumerate(names)}
        labels = support_labels(np.array(columns_out["support_level"], dtype=np.int64)) if len(keep) else np.zeros(0)
        return Holdout(columns_out, labels, [str(r) for r in columns_out["region"]])

    # --- aliases ------------------------------------------------------------------------------

    def resolve(self, prefix: str) -> str:
        if len(prefix) < 8 or any(c not in "0123456789abcdef" for c in prefix):
            raise ModelOpError(400, "a version is at least 8 lowercase hex digits of the content hash")
        found = self.store.resolve(MODEL, prefix)
        if not found:
            raise ModelOpError(404, f"no model version {prefix!r}")
        if len(found) > 1:
            raise ModelOpError(409, f"{prefix!r} matches {len(found)} versions; give more digits")
        return found[0]

    def move(self, alias: str, version: str, by: str, reason: str) -> str:
        if alias not in ALIASES:
            raise ModelOpError(400, f"unknown alias {alias!r}; known: {', '.join(ALIASES)}")
        full = self.resolve(version) if version else ""
        if alias == "champion" and not full:
            raise ModelOpError(400, "the champion cannot be cleared; promote another version")
        self.store.move_alias(MODEL, alias, full, by, reason)
        return full

    def rollback(self, alias: str, by: str) -> str:
        """Point the alias back at the version it had before its current one."""
        history = self.store.alias_history(MODEL, alias)
        if not history:
            raise ModelOpError(404, f"{alias} has never been set")
        current = history[0].version
        previous = next((m.version for m in history[1:] if m.version and m.version != current), None)
        if previous is None:
            raise ModelOpError(409, f"{alias} has no earlier version to roll back to")
        self.store.move_alias(MODEL, alias, previous, by, f"rollback from {current[:12]}")
        return previous

    def listing(self) -> dict[str, Any]:
        aliases = self.store.aliases(MODEL)
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        return {
            "model": MODEL,
            "aliases": aliases,
            "versions": [
                {"version": v.version, "short": v.version[:12], "pushed_at": v.pushed_at.isoformat(),
                 "pushed_by": v.pushed_by, "aliases": sorted(by_version.get(v.version, [])),
                 "training": json.loads(v.manifest).get("training", {}), "gate": json.loads(v.gate_report or "{}")}
                for v in self.store.versions(MODEL)
            ],
        }  # fmt: skip

    def serving_champion(self) -> ModelArtifact | None:
        """The champion as it scores now: its online learner's last checkpoint when there is one (the
        stored version plus what it has learned since), else the stored version. A candidate is judged
        against what it would replace."""
        stored = self._artifact_of("champion")
        if stored is None:
            return None
        saved = self.store.load_state(MODEL, "champion", stored.version, SCORING_GROUP)
        if saved is None:
            return stored
        learner = OnlineLogisticRegression.from_state_bytes(stored.spec, saved[2])
        return learner.to_artifact(f"champion {stored.short_version} after {learner.n_labels:,} labels online")

    def _artifact_of(self, alias: str) -> ModelArtifact | None:
        version = self.store.aliases(MODEL).get(alias)
        data = self.store.artifact(MODEL, version) if version else None
        return load_artifact(data, expected_version=version) if data else None

    # --- bootstrap and bulk rescoring ------------------------------------------------------------

    def ensure_champion(self) -> str | None:
        """A first start with no model: an all-zero model on the stream's spec becomes champion and
        learns online from the first IDs (it scores 0.5 until then). Returns its version if created."""
        if self.store.aliases(MODEL).get("champion"):
            return None
        artifact = OnlineLogisticRegression(self.stream_spec).to_artifact(
            "bootstrap: all-zero weights, learns online from canvass IDs"
        )
        self.store.add_version(
            artifact.version, MODEL, artifact.to_bytes(), json.dumps(artifact.manifest(), sort_keys=True),
            artifact.spec.fingerprint, json.dumps({"bootstrap": True}), "groundswell",
        )  # fmt: skip
        self.store.move_alias(MODEL, "champion", artifact.version, "groundswell", "bootstrap")
        return artifact.version

    def rescore_all(self, version: str) -> RescoreResult:
        """Every voter on the file, scored inside ClickHouse (linear models are one SQL expression)."""
        data = self.store.artifact(MODEL, version)
        if data is None:
            raise ModelOpError(404, f"no model version {version!r}")
        try:
            artifact = load_artifact(data, expected_version=version)
        except ArtifactError as exc:
            raise ModelOpError(422, f"stored artifact no longer loads: {exc}") from exc
        sql = score_sql(artifact)
        started = time.perf_counter()
        # Straight into the latest-score table: a bulk score belongs to no canvass event, and writing
        # it to voter_scores as well (for the view to copy) doubled the rows written.
        self._client.command(
            f"INSERT INTO {self._db}.voter_scores_latest (model, version, voter_id, score, scored_at, source) "
            f"WITH {sql.with_clause} "
            f"SELECT '{MODEL}', '{version}', voter_id, {sql.expression}, now64(3), 'bulk' FROM {self._db}.voters FINAL"
        )
        seconds = time.perf_counter() - started
        count = self._client.query(f"SELECT count() FROM {self._db}.voters FINAL").result_rows[0][0]
        return RescoreResult(version, int(count), seconds)
