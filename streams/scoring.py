"""The scoring agent: scores the voters canvass events touch, and learns from every ID.

It reads accepted canvass events from ClickHouse in (partition, offset) order after its position
(sinks/clickhouse/scoring.py: the raw table is the exactly-once record, so a replay sees the same
rows in the same order). For each batch, every alias (champion, and challenger or shadow when set)
scores the rows whose voter is on the voter file; for the rows with a support level it records the
score before learning (prequential evaluation), then learns, except from voters in the evaluation
slice, which are kept out of training so their metrics are not biased by who was contacted.

Every `checkpoint_s` the learners' states and the position are saved together; after a crash the
agent resumes from the checkpoint and replays what followed (scores are keyed by event, so the
replay replaces rather than adds; the learners relearn exactly those labels once).

A promotion (an alias moved) is announced on the control topic; the agent reloads its aliases
between two batches, so every event is scored by exactly one champion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from models.scoring import HashedFeatures, RowHasher
from models.scoring.artifact import ModelArtifact, load_artifact
from models.scoring.evaluation import EvaluationSlice, PrequentialEvaluator
from models.scoring.online import OnlineLogisticRegression, support_labels
from sinks.clickhouse.models import MetricsRow, ModelRegistryStore
from sinks.clickhouse.scoring import CanvassBatch, Position, ScoringSource

log = logging.getLogger(__name__)
T = TypeVar("T")
MODEL = "support"
SCORING_GROUP = "groundswell-scoring"


class Runner(Protocol):
    """Runs a blocking function with (registry, source) on a thread that owns a ClickHouse client."""

    def __call__(self, fn: Callable[[ModelRegistryStore, ScoringSource], T], /) -> Awaitable[T]: ...


@dataclass
class AliasLearner:
    alias: str
    artifact: ModelArtifact
    learner: OnlineLogisticRegression
    hasher: RowHasher
    overall: PrequentialEvaluator = field(default_factory=PrequentialEvaluator)
    held_out: PrequentialEvaluator = field(default_factory=PrequentialEvaluator)

    @property
    def version(self) -> str:
        return self.artifact.version


@dataclass(frozen=True)
class BatchOutcome:
    rows: int
    scored: int
    labels: int
    learned: int


class ScoringAgent:
    def __init__(
        self,
        run: Runner,
        worker: str,
        evaluation_share: float = 0.05,
        batch_rows: int = 50_000,
        checkpoint_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._run = run
        self._worker = worker
        self._slice = EvaluationSlice(evaluation_share)
        self._batch_rows = batch_rows
        self._checkpoint_s = checkpoint_s
        self._clock = clock
        self._learners: dict[str, AliasLearner] = {}
        self._positions: dict[int, Position] = {}
        self._aliases_stale = True
        self._last_checkpoint = clock()
        self.scored = 0
        self.last_metrics: list[MetricsRow] = []  # as of the last checkpoint, for Prometheus

    def aliases_changed(self) -> None:
        """Called on a control message: reload the aliases before the next batch."""
        self._aliases_stale = True

    @property
    def versions(self) -> dict[str, str]:
        return {alias: learner.version for alias, learner in self._learners.items()}

    @property
    def batch_rows(self) -> int:
        return self._batch_rows

    async def tick(self) -> BatchOutcome:
        if self._aliases_stale:
            await self._reload_aliases()
        if not self._learners:
            return BatchOutcome(0, 0, 0, 0)
        batch = await self._read(dict(self._positions))
        outcome = await self._process(batch)
        if self._clock() - self._last_checkpoint >= self._checkpoint_s:
            await self.checkpoint()
        return outcome

    async def _process(self, batch: CanvassBatch) -> BatchOutcome:
        n = len(batch)
        if n == 0:
            return BatchOutcome(0, 0, 0, 0)
        columns = batch.columns
        rows = np.flatnonzero(np.asarray(columns["on_file"], dtype=bool))
        voter_ids = [columns["voter_id"][i] for i in rows]
        event_ids = [columns["event_id"][i] for i in rows]
        levels = [columns["support_level"][i] for i in rows]
        labelled = np.array([level is not None for level in levels], dtype=bool)
        labels = support_labels(np.array([lv for lv in levels if lv is not None], dtype=np.int64))
        regions = [str(columns["region"][i]) for i in rows[labelled]]
        held_out = self._slice.contains([v for v, has in zip(voter_ids, labelled, strict=True) if has])
        features_input = {name: [values[i] for i in rows] for name, values in columns.items()}
        now = self._clock()
        learners = list(self._learners.values())
        # Hashing, scoring and learning off the event loop (ingest and the web share it); one call
        # at a time, so the learners and their hashers are never used by two threads at once.
        scored = await asyncio.to_thread(_score_all, learners, features_input)
        for learner, (_, scores) in zip(learners, scored, strict=True):
            await self._store_scores(learner, voter_ids, event_ids, scores, now)
        for learner, (features, scores) in zip(learners, scored, strict=True):
            await asyncio.to_thread(
                _evaluate_then_learn, learner, features, scores, labelled, labels, regions, held_out
            )
        self._advance(columns)
        self.scored += len(rows)
        return BatchOutcome(n, len(rows), int(labelled.sum()), int((~held_out).sum()))

    def _advance(self, columns: dict[str, list[Any]]) -> None:
        """Rows come in (partition, offset) order: the last row of each partition is its new position."""
        for partition, offset, ingested in zip(
            columns["kafka_partition"], columns["kafka_offset"], columns["ingested_at"], strict=True
        ):
            self._positions[int(partition)] = Position(int(offset), _utc(ingested))

    async def checkpoint(self) -> None:
        """Save every learner with the position it has learned up to, and its metrics."""
        self._last_checkpoint = self._clock()
        saved = {str(p): pos.offset for p, pos in self._positions.items()}
        saved.update({f"t{p}": int(pos.ingested_at.timestamp() * 1000) for p, pos in self._positions.items()})
        latest: list[MetricsRow] = []
        for learner in self._learners.values():
            rows = self._metric_rows(learner)
            await self._save(learner, saved, rows)
            latest += rows
        self.last_metrics = latest

    def _metric_rows(self, learner: AliasLearner) -> list[MetricsRow]:
        rows = []
        for prefix, evaluator in (("all", learner.overall), ("held_out", learner.held_out)):
            snapshot = evaluator.snapshot()
            scopes = {prefix: snapshot.overall}
            scopes.update({f"{prefix}:region:{r}": m for r, m in snapshot.regions.items()})
            for scope, m in scopes.items():
                rows.append(
                    MetricsRow(MODEL, learner.version, learner.alias, scope, m.labels, m.window_labels,
                               m.window_log_loss, m.window_brier, m.window_ece, m.window_auc, self._worker)
                )  # fmt: skip
        return rows

    async def _reload_aliases(self) -> None:
        """Swap learners whose alias moved. The agent's position comes from the champion's checkpoint
        only when it has none yet (a start); a learner added later joins at the current position."""
        self._aliases_stale = False
        targets = await self._aliases()
        for alias in list(self._learners):
            if targets.get(alias) != self._learners[alias].version:
                await self.checkpoint()  # the outgoing learner's last state and metrics
                del self._learners[alias]
        starting = not self._positions
        for alias in sorted(targets, key=lambda a: a != "champion"):  # the champion first
            version = targets[alias]
            if alias in self._learners:
                continue
            data = await self._artifact(version)
            if data is None:
                log.error("alias %s points at version %s, which is not in the registry", alias, version[:12])
                continue
            artifact = load_artifact(data, expected_version=version)
            saved = await self._load_state(alias, version)
            if saved is not None:
                positions, _, state = saved
                learner = OnlineLogisticRegression.from_state_bytes(artifact.spec, state)
                if starting and alias == "champion":
                    self._positions = _positions_from(positions)
            else:
                learner = OnlineLogisticRegression(artifact.spec)
                learner.warm_start(artifact.coefficients, artifact.intercept)
            self._learners[alias] = AliasLearner(alias, artifact, learner, RowHasher(artifact.spec))
            log.info("scoring with %s = %s (%s)", alias, artifact.short_version, "resumed" if saved else "fresh")

    # Each closes over its own arguments (a lambda in a loop would see the loop's last values).
    async def _read(self, positions: dict[int, Position]) -> CanvassBatch:
        return await self._run(lambda _, source: source.read(positions, self._batch_rows))

    async def _aliases(self) -> dict[str, str]:
        return await self._run(lambda registry, _: registry.aliases(MODEL))

    async def _store_scores(
        self, learner: AliasLearner, voters: list[str], events: list[Any], scores: npt.NDArray[np.float64], now: float
    ) -> None:
        model, version, alias = MODEL, learner.version, learner.alias
        await self._run(lambda registry, _: registry.insert_scores(model, version, alias, voters, events, scores, now))

    async def _save(self, learner: AliasLearner, positions: dict[str, int], metrics: list[MetricsRow]) -> None:
        state, labels, alias, version = (
            learner.learner.state_bytes(),
            learner.learner.n_labels,
            learner.alias,
            learner.version,
        )
        await self._run(
            lambda registry, _: registry.save_state(MODEL, alias, version, SCORING_GROUP, positions, labels, state)
        )
        await self._run(lambda registry, _: registry.insert_metrics(metrics))

    async def _artifact(self, version: str) -> bytes | None:
        return await self._run(lambda registry, _: registry.artifact(MODEL, version))

    async def _load_state(self, alias: str, version: str) -> tuple[dict[str, int], int, bytes] | None:
        return await self._run(lambda registry, _: registry.load_state(MODEL, alias, version, SCORING_GROUP))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _positions_from(saved: dict[str, int]) -> dict[int, Position]:
    """Checkpoint positions: `"<partition>": offset` and `"t<partition>": ingested_at in ms`."""
    return {
        int(key): Position(offset, datetime.fromtimestamp(saved.get(f"t{key}", 0) / 1000, UTC))
        for key, offset in saved.items()
        if not key.startswith("t")
    }


def _score_all(
    learners: list[AliasLearner], rows: dict[str, list[Any]]
) -> list[tuple[HashedFeatures, npt.NDArray[np.float64]]]:
    out = []
    for learner in learners:
        features = learner.hasher.transform(rows)
        out.append((features, learner.learner.predict_proba(features)))
    return out


def _evaluate_then_learn(
    learner: AliasLearner,
    features: HashedFeatures,
    scores: npt.NDArray[np.float64],
    labelled: npt.NDArray[np.bool_],
    labels: npt.NDArray[np.float64],
    regions: list[str],
    held_out: npt.NDArray[np.bool_],
) -> None:
    if not labelled.any():
        return
    label_scores = scores[labelled]
    learner.overall.update(label_scores, labels, regions)
    if held_out.any():
        learner.held_out.update(
            label_scores[held_out], labels[held_out], [r for r, h in zip(regions, held_out, strict=True) if h]
        )
    train = ~held_out
    if train.any():
        learner.learner.partial_fit(features.take(np.flatnonzero(labelled)[train]), labels[train])
