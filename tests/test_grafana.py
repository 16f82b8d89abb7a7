"""The Grafana dashboards in docker/ query only metrics the worker exports (nothing runs Grafana here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sinks.metrics import PipelineMetrics

DASHBOARDS = Path(__file__).resolve().parents[1] / "docker" / "grafana" / "dashboards"
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def exported_series() -> set[str]:
    families = {(f.name, f.type) for f in PipelineMetrics().registry.collect()}
    series = set()
    for name, kind in families:
        series |= {name} | ({f"{name}_total"} if kind == "counter" else set())
        series |= {f"{name}{s}" for s in SUFFIXES[:3]} if kind == "histogram" else set()
    return series


def test_pipeline_panels_name_exported_metrics_and_unique_ids() -> None:
    dashboard = json.loads((DASHBOARDS / "pipeline.json").read_text())
    exported = exported_series()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"\bgroundswell_\w+", target["expr"])
    }
    assert len(queried) >= 12 and sorted(queried - exported) == []
