"""In-stream scoring rate: the vectorised path against a naive per-voter scikit-learn loop, same run.

`bench_scoring()` builds a simulated world, trains the online model on some contacts (so the
coefficients are realistic), then scores voter rows three ways:

- columns: `LinearScorer.score_rows` on a dict of column arrays (hash with warm value caches,
  gather, sum, sigmoid) - how a batch of touched voters is scored in the stream;
- records: the same from a list of dicts (one per voter, as events arrive);
- naive: per voter, build that voter's keys, hash them into a one-row CSR matrix and call a
  scikit-learn LogisticRegression's `predict_proba` holding the same coefficients.

It checks that all three agree, and returns rates in rows per second (best of `repeats`). It
asserts nothing about speed: the caller prints the figures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.utils import murmurhash3_32

from models.scoring.features import FeatureSpec, RowHasher, value_text
from models.scoring.online import OnlineLogisticRegression
from models.scoring.simulated import WORLD_SPEC, contact_stream, voter_columns
from streams.simulation.world import build_world


@dataclass(frozen=True)
class ScoringBench:
    rows: int
    columns_rows_per_s: float
    records_rows_per_s: float
    naive_rows: int
    naive_rows_per_s: float
    max_abs_difference: float  # between the three paths' scores

    @property
    def speedup(self) -> float:
        return self.columns_rows_per_s / self.naive_rows_per_s

    def lines(self) -> list[str]:
        return [
            f"vectorised, columns : {self.columns_rows_per_s:12,.0f} voters/s ({self.rows:,} voters)",
            f"vectorised, records : {self.records_rows_per_s:12,.0f} voters/s",
            f"naive sklearn loop  : {self.naive_rows_per_s:12,.0f} voters/s ({self.naive_rows:,} voters)",
            f"speed-up (columns)  : {self.speedup:12,.0f}x; scores agree within {self.max_abs_difference:.1e}",
        ]


def _best_rate(rows: int, repeats: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return rows / max(best, 1e-9)


def _naive_row(spec: FeatureSpec, record: dict[str, object]) -> sp.csr_matrix:
    """One voter's design row the slow, obvious way (categorical and banded fields only)."""
    mask = spec.n_features - 1
    columns = []
    for f in spec.fields:
        value = record.get(f.column, f.default)
        if f.kind == "banded":
            number = float(cast(float, value)) if value is not None else math.nan
            text = "" if math.isnan(number) else f.band_labels()[sum(number >= e for e in f.edges)]
        else:
            text = value_text(value)
        columns.append(murmurhash3_32(f"{f.name}={text}", positive=True) & mask)
    data = np.ones(len(columns))
    matrix = sp.csr_matrix((data, (np.zeros(len(columns), dtype=np.int64), columns)), shape=(1, spec.n_features))
    return matrix


def bench_scoring(
    rows: int = 200_000, naive_rows: int = 2_000, training_labels: int = 50_000, repeats: int = 3, seed: int = 42
) -> ScoringBench:
    world = build_world(seed)
    columns = voter_columns(world)
    model = OnlineLogisticRegression(WORLD_SPEC)
    stream = contact_stream(world, training_labels, seed)
    hasher = RowHasher(WORLD_SPEC)
    model.partial_fit(hasher.transform({k: v[stream.voters] for k, v in columns.items()}), stream.labels)
    artifact = model.to_artifact("bench")

    pick = np.random.default_rng(seed).integers(0, world.n_voters, rows)
    batch = {name: column[pick] for name, column in columns.items()}
    records = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
    scorer = artifact.scorer()
    by_columns = scorer.score_rows(batch)  # also warms the caches, as a running stream has them warm
    by_records = scorer.score_rows(records)
    columns_rate = _best_rate(rows, repeats, lambda: scorer.score_rows(batch))
    records_rate = _best_rate(rows, repeats, lambda: scorer.score_rows(records))

    classifier = LogisticRegression()
    classifier.classes_ = np.array([0.0, 1.0])
    classifier.coef_ = artifact.coefficients.reshape(1, -1)
    classifier.intercept_ = np.array([artifact.intercept])
    sample = records[:naive_rows]
    naive = np.empty(len(sample))

    def naive_loop() -> None:
        for i, record in enumerate(sample):
            naive[i] = classifier.predict_proba(_naive_row(WORLD_SPEC, record))[0, 1]

    naive_rate = _best_rate(len(sample), 1, naive_loop)
    difference = max(
        float(np.abs(by_columns - by_records).max()), float(np.abs(by_columns[: len(sample)] - naive).max())
    )
    return ScoringBench(rows, columns_rate, records_rate, len(sample), naive_rate, difference)


if __name__ == "__main__":
    print("\n".join(bench_scoring().lines()))
