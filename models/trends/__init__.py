"""Trend detectors: empirical-Bayes baselines, CUSUM, alarm budgets, roll-ups, data-quality checks.

Pure numpy. The trend agent builds a `Hierarchy` from the campaign geography, one `TrendDetector`
per watched metric, and feeds each closed window's per-precinct columns (`RateCounts` or
`EventCounts`); the detector returns `TrendFlag` records to upsert on `flag_id`.
"""

from models.trends.detector import LevelStatus, TrendDetector
from models.trends.flags import TrendFlag
from models.trends.geography import LEVELS, Hierarchy, Level
from models.trends.inputs import EventCounts, RateCounts, WindowSpan
from models.trends.settings import (
    LevelSettings,
    MetricSpec,
    QualitySettings,
    contact_rate_spec,
    email_click_spec,
    signup_spec,
    support_rate_spec,
    support_residual_spec,
    unsubscribe_spec,
)

__all__ = [
    "LEVELS",
    "EventCounts",
    "Hierarchy",
    "Level",
    "LevelSettings",
    "LevelStatus",
    "MetricSpec",
    "QualitySettings",
    "RateCounts",
    "TrendDetector",
    "TrendFlag",
    "WindowSpan",
    "contact_rate_spec",
    "email_click_spec",
    "signup_spec",
    "support_rate_spec",
    "support_residual_spec",
    "unsubscribe_spec",
]
