"""docs/data-dictionary.md names every table and view the migrations create and every Prometheus metric."""

from __future__ import annotations

import re
from pathlib import Path

from sinks.clickhouse.migrations import MIGRATIONS
from sinks.clickhouse.tables import Topology
from sinks.metrics import PipelineMetrics

DICTIONARY = (Path(__file__).resolve().parents[1] / "docs" / "data-dictionary.md").read_text()
CREATED = re.compile(r"CREATE (?:OR REPLACE )?(?:TABLE|VIEW|MATERIALIZED VIEW)(?: IF NOT EXISTS)? groundswell\.(\w+)")
# Families documented once by their pattern, e.g. `metrics_{precinct,county,region,state}_{15m,1h,1d}`.
PATTERN = re.compile(r"`(\w*)\{([\w,]+)\}(\w*)(?:\{([\w,]+)\}(\w*))?`")


def documented_names() -> set[str]:
    names = set(re.findall(r"`(\w+)`", DICTIONARY))
    for head, first, middle, second, tail in PATTERN.findall(DICTIONARY):
        for a in first.split(","):
            for b in second.split(",") if second else [""]:
                names.add(f"{head}{a}{middle}{b}{tail}")
    return names


def test_every_table_and_view_is_documented() -> None:
    created = {
        name
        for migration in MIGRATIONS
        for statement in migration.statements(Topology("groundswell", None, 100), "UTC")
        for name in CREATED.findall(statement)
    }
    assert len(created) >= 40  # the pattern still matches the DDL
    assert sorted(created - documented_names() - {"schema_migrations"}) == []


def test_every_pipeline_metric_is_documented() -> None:
    exported = {family.name for family in PipelineMetrics().registry.collect()}
    names = documented_names()
    # Counters are exposed with `_total`; the dictionary names them as scraped.
    missing = [m for m in exported if m not in names and f"{m}_total" not in names]
    assert len(exported) >= 20 and missing == []
