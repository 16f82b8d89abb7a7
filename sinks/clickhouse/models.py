"""The model registry in ClickHouse: immutable versions, alias moves, scores, metrics, online state.

Versions are content-addressed (models/scoring/artifact.py: the sha256 of the canonical manifest,
which holds the coefficients' own hash), so pushing the same model twice stores one version.
Aliases are an append-only log of moves; the current target of an alias is its newest move, and
rollback reads the history. Everything here is blocking: call it from a thread that owns its client.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.writer import EXACTLY_ONCE_SETTINGS

ALIASES = ("champion", "challenger", "shadow")
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class StoredVersion:
    version: str
    model: str
    pushed_at: datetime
    pushed_by: str
    manifest: str  # JSON
    size_bytes: int
    feature_fingerprint: str
    gate_report: str  # JSON


@dataclass(frozen=True)
class AliasMove:
    model: str
    alias: str
    version: str  # "" when the alias was cleared
    seq: int
    moved_at: datetime
    moved_by: str
    reason: str


@dataclass(frozen=True)
class MetricsRow:
    model: str
    version: str
    alias: str
    scope: str  # "all" or "region:<name>"
    labels: int
    window_labels: int
    log_loss: float
    brier: float
    ece: float
    auc: float
    worker: str


class ModelRegistryStore:
    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        self._topology = warehouse.topology

    def _read(self, name: str) -> str:
        return self._topology.qualified(name)

    def _write(self, name: str) -> str:
        return self._topology.qualified(self._topology.local_name(name))

    # --- versions ------------------------------------------------------------------------------

    def add_version(
        self, version: str, model: str, artifact: bytes, manifest: str, fingerprint: str, gate_report: str, by: str
    ) -> None:
        self._client.insert(
            self._read("model_versions"),
            [[version, model, by, manifest, artifact, len(artifact), fingerprint, gate_report]],
            column_names=["version", "model", "pushed_by", "manifest", "artifact", "size_bytes",
                          "feature_fingerprint", "gate_report"],
            settings={**EXACTLY_ONCE_SETTINGS, "insert_deduplication_token": f"model-version/{version}"},
        )  # fmt: skip

    def versions(self, model: str) -> list[StoredVersion]:
        rows = self._client.query(
            f"SELECT version, model, pushed_at, pushed_by, manifest, size_bytes, feature_fingerprint, gate_report "
            f"FROM {self._read('model_versions')} FINAL WHERE model = {{model:String}} ORDER BY pushed_at",
            parameters={"model": model},
        ).result_rows
        return [StoredVersion(str(r[0]), str(r[1]), r[2], str(r[3]), str(r[4]), int(r[5]), str(r[6]), str(r[7]))
                for r in rows]  # fmt: skip

    def artifact(self, model: str, version: str) -> bytes | None:
        """The artifact's bytes; `version` may be a unique prefix of at least 8 hex digits."""
        rows = self._client.query(
            f"SELECT version, artifact FROM {self._read('model_versions')} FINAL "
            f"WHERE model = {{model:String}} AND startsWith(version, {{prefix:String}}) LIMIT 2",
            parameters={"model": model, "prefix": version},
            column_formats={"artifact": "bytes"},
        ).result_rows
        if len(rows) != 1:
            return None
        data = rows[0][1]
        return data if isinstance(data, bytes) else str(data).encode("latin-1")

    def resolve(self, model: str, prefix: str) -> list[str]:
        """Full versions starting with `prefix` (a modeller types the first 8-12 hex digits)."""
        rows = self._client.query(
            f"SELECT DISTINCT version FROM {self._read('model_versions')} "
            f"WHERE model = {{model:String}} AND startsWith(version, {{prefix:String}})",
            parameters={"model": model, "prefix": prefix},
        ).result_rows
        return sorted(str(r[0]) for r in rows)

    # --- aliases -------------------------------------------------------------------------------

    def move_alias(self, model: str, alias: str, version: str, by: str, reason: str) -> AliasMove:
        if alias not in ALIASES:
            raise ValueError(f"unknown alias {alias!r}; known: {', '.join(ALIASES)}")
        seq = max(time.time_ns() // 1000, self._last_seq(model) + 1)  # monotonic even if clocks step back
        self._client.insert(
            self._read("model_aliases"),
            [[model, alias, version, seq, by, reason]],
            column_names=["model", "alias", "version", "seq", "moved_by", "reason"],
        )
        return AliasMove(model, alias, version, seq, datetime.now(UTC), by, reason)

    def _last_seq(self, model: str) -> int:
        rows = self._client.query(
            f"SELECT max(seq) FROM {self._read('model_aliases')} WHERE model = {{model:String}}",
            parameters={"model": model},
        ).result_rows
        return int(rows[0][0] or 0)

    def aliases(self, model: str) -> dict[str, str]:
        """alias → version, for the aliases that point somewhere now."""
        rows = self._client.query(
            f"SELECT alias, argMax(version, seq) FROM {self._read('model_aliases')} "
            f"WHERE model = {{model:String}} GROUP BY alias",
            parameters={"model": model},
        ).result_rows
        return {str(alias): str(version) for alias, version in rows if version}

    def alias_history(self, model: str, alias: str) -> list[AliasMove]:
        """Moves of one alias, newest first."""
        rows = self._client.query(
            f"SELECT model, alias, version, seq, moved_at, moved_by, reason FROM {self._read('model_aliases')} "
            f"WHERE model = {{model:String}} AND alias = {{alias:String}} ORDER BY seq DESC",
            parameters={"model": model, "alias": alias},
        ).result_rows
        return [AliasMove(str(r[0]), str(r[1]), str(r[2]), int(r[3]), r[4], str(r[5]), str(r[6])) for r in rows]

    # --- scores, metrics, online state -----------------------------------------------------------

    def calibration(self, model: str, days: int = 7, bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
        """Reliability bins per (alias, version) over the last `days` of canvass IDs: the mean stream
        score and the observed supporter share of the IDs in each score bin. Stream scores are given
        before the model learns from the ID (prequential), so these are honest out-of-sample bins."""
        result = self._client.query(
            f"SELECT alias, version, bin, avg(last_score) AS predicted, avg(supporter) AS observed, count() AS n FROM ("
            f"  SELECT event_id, alias, version, argMax(score, scored_at) AS last_score, "
            f"         least(toUInt32(floor(last_score * {{bins:UInt32}})), {{bins:UInt32}} - 1) AS bin "
            f"  FROM {self._read('voter_scores')} "
            f"  WHERE model = {{model:String}} AND source = 'stream' "
            f"    AND scored_at >= now64(3) - toIntervalDay({{days:UInt32}}) "
            f"  GROUP BY event_id, alias, version) AS s "
            f"INNER JOIN ("
            f"  SELECT event_id, toFloat64(support_level <= 2) AS supporter FROM {self._read('raw_canvass')} "
            f"  WHERE support_level IS NOT NULL AND occurred_at >= now64(3) - toIntervalDay({{days:UInt32}} + 1)"
            f") AS c USING event_id "
            f"GROUP BY alias, version, bin ORDER BY alias, version, bin",
            parameters={"model": model, "days": days, "bins": bins},
        )
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for alias, version, bin_index, predicted, observed, n in result.result_rows:
            grouped.setdefault((alias, version), []).append(
                {"bin": int(bin_index), "predicted": float(predicted), "observed": float(observed), "n": int(n)}
            )
        return [{"alias": a, "version": v, "days": days, "bins": b} for (a, v), b in grouped.items()]

    def insert_scores(
        self,
        model: str,
        version: str,
        alias: str,
        voter_ids: Sequence[str],
        event_ids: Sequence[uuid.UUID],
        scores: npt.NDArray[np.float64],
        scored_at: float,
    ) -> None:
        """Stream scores, one per event: a replayed event's score replaces its first (same key)."""
        if not len(voter_ids):
            return
        when = datetime.fromtimestamp(scored_at, UTC)
        rows = [[v, model, version, alias, e, float(s), when, "stream"]
                for v, e, s in zip(voter_ids, event_ids, scores, strict=True)]  # fmt: skip
        self._client.insert(
            self._read("voter_scores"), rows,
            column_names=["voter_id", "model", "version", "alias", "event_id", "score", "scored_at", "source"],
        )  # fmt: skip

    def insert_metrics(self, rows: Sequence[MetricsRow]) -> None:
        if not rows:
            return
        columns = list(MetricsRow.__dataclass_fields__)
        self._client.insert(
            self._write("model_metrics"), [[getattr(r, c) for c in columns] for r in rows], column_names=columns
        )

    def save_state(
        self, model: str, alias: str, base_version: str, group: str, positions: Mapping[str, int], labels: int,
        state: bytes,
    ) -> None:  # fmt: skip
        self._client.insert(
            self._write("model_state"),
            [[model, alias, base_version, group, dict(positions), labels, state]],
            column_names=["model", "alias", "base_version", "consumer_group", "positions", "labels", "state"],
        )

    def load_state(
        self, model: str, alias: str, base_version: str, group: str
    ) -> tuple[dict[str, int], int, bytes] | None:
        """The newest checkpoint of an online learner started from `base_version`, if any."""
        rows = self._client.query(
            f"SELECT positions, labels, state FROM {self._write('model_state')} "
            f"WHERE model = {{model:String}} AND alias = {{alias:String}} AND base_version = {{base:String}} "
            f"AND consumer_group = {{group:String}} ORDER BY saved_at DESC LIMIT 1",
            parameters={"model": model, "alias": alias, "base": base_version, "group": group},
            column_formats={"state": "bytes"},
        ).result_rows
        if not rows:
            return None
        positions, labels, state = rows[0]
        return {str(k): int(v) for k, v in positions.items()}, int(labels), bytes(state)

    def latest_metrics(self, model: str) -> list[dict[str, Any]]:
        """The newest metrics row per (version, alias, scope)."""
        result = self._client.query(
            f"SELECT version, alias, scope, argMax(labels, recorded_at) AS labels, "
            f"argMax(window_labels, recorded_at) AS window_labels, argMax(log_loss, recorded_at) AS log_loss, "
            f"argMax(brier, recorded_at) AS brier, argMax(ece, recorded_at) AS ece, argMax(auc, recorded_at) AS auc, "
            f"max(recorded_at) AS last_recorded_at FROM {self._write('model_metrics')} "
            f"WHERE model = {{model:String}} GROUP BY version, alias, scope ORDER BY version, alias, scope",
            parameters={"model": model},
        )
        return [
            {k: (v.isoformat() if isinstance(v, datetime) else (None if isinstance(v, float) and v != v else v))
             for k, v in zip(result.column_names, row, strict=True)}
            for row in result.result_rows
        ]  # fmt: skip
