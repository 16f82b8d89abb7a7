"""The scoring bench runs and its three paths agree (its rates are printed by bench/, never asserted)."""

from __future__ import annotations

from models.scoring.bench import bench_scoring


def test_bench_paths_agree() -> None:
    result = bench_scoring(rows=5_000, naive_rows=200, training_labels=5_000, repeats=1)
    assert result.rows == 5_000 and result.naive_rows == 200
    assert result.max_abs_difference < 1e-12
    assert min(result.columns_rows_per_s, result.records_rows_per_s, result.naive_rows_per_s) > 0
    assert len(result.lines()) == 4
