"""How serious a flag is: info, warning or critical, from its strength, size and breadth.

The rule (docs/alerts.md):
- critical: |z| >= critical_z, |effect| >= critical_effect_multiple x the metric's material effect, and
  the flag covers a county or a region (a single precinct is worth a look in the morning, not a page);
- warning: |z| >= warning_z and |effect| >= the material effect;
- info: anything else the detectors flagged (it passed their CUSUM threshold, but is weak or small).

The material effect is the smallest movement staff would act on, per metric, in the flag's own units:
rates in proportion units (0.04 = 4 points), counts as a ratio (0.5 = +50% against the baseline).
A metric with no material effect configured is judged on |z| alone.
"""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
_RANK: dict[Severity, int] = {"info": 1, "warning": 2, "critical": 3}


def rank(severity: Severity) -> int:
    return _RANK[severity]


class SeverityRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    warning_z: float = Field(default=3.0, gt=0)
    critical_z: float = Field(default=5.0, gt=0)
    critical_effect_multiple: float = Field(default=2.0, ge=1.0)
    critical_levels: tuple[Literal["precinct", "county", "region"], ...] = ("county", "region")
    # Metric name or shell-style pattern ("signups:*") -> material effect; the first exact match wins,
    # then the first matching pattern in file order.
    material_effect: dict[str, float] = Field(default_factory=dict)
    quality: Severity = "warning"  # canvass data-quality flags (possible fabricated data)

    @model_validator(mode="after")
    def _ordered(self) -> SeverityRules:
        if self.critical_z < self.warning_z:
            raise ValueError("severity.critical_z must be at least severity.warning_z")
        bad = [name for name, value in self.material_effect.items() if not (value >= 0 and math.isfinite(value))]
        if bad:
            raise ValueError(f"severity.material_effect: {bad} must be finite and non-negative")
        return self

    def material(self, metric: str) -> float:
        if metric in self.material_effect:
            return self.material_effect[metric]
        for pattern, value in self.material_effect.items():
            if fnmatchcase(metric, pattern):
                return value
        return 0.0

    def trend_severity(self, metric: str, level: str, z_score: float, effect: float) -> Severity:
        z = abs(z_score)
        size = abs(effect) if not math.isnan(effect) else 0.0  # a count from a zero baseline is +inf: large
        material = self.material(metric)
        if z >= self.critical_z and size >= self.critical_effect_multiple * material and level in self.critical_levels:
            return "critical"
        if z >= self.warning_z and size >= material:
            return "warning"
        return "info"
