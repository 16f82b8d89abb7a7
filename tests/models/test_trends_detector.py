"""The trend detector end to end on small simulated campaigns: roll-ups, residuals, flags once, persistence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from models.trends import (
    EventCounts,
    Hierarchy,
    RateCounts,
    TrendDetector,
    TrendFlag,
    WindowSpan,
    signup_spec,
    support_rate_spec,
    support_residual_spec,
)

START = datetime(2026, 9, 7, tzinfo=UTC)


def hierarchy(regions: int, counties_per_region: int, precincts_per_county: int) -> Hierarchy:
    return Hierarchy.from_rows(
        (f"P{r}{c}{p:03d}", f"C{r}{c}", f"R{r}")
        for r in range(regions)
        for c in range(counties_per_region)
        for p in range(precincts_per_county)
    )


def day_span(day: int) -> WindowSpan:
    return WindowSpan(START + timedelta(days=day), START + timedelta(days=day + 1))


@dataclass
class Voters:
    """Per precinct: IDs a day and the mean model score of the voters reached; the model is calibrated."""

    volume: np.ndarray
    mean_score: np.ndarray
    mix: np.ndarray = field(init=False)  # added to the mean score of whoever is reached
    opinion: np.ndarray = field(init=False)  # added to everyone's true support

    def __post_init__(self) -> None:
        self.mix = np.zeros_like(self.mean_score)
        self.opinion = np.zeros_like(self.mean_score)

    def day(self, rng: np.random.Generator) -> RateCounts:
        n = rng.poisson(self.volume)
        precinct = np.repeat(np.arange(n.size), n)
        m = np.clip(self.mean_score + self.mix, 0.05, 0.95)[precinct]
        score = rng.beta(m * 3, (1 - m) * 3)
        answered_yes = rng.random(score.size) < np.clip(score + self.opinion[precinct], 0, 1)

        def total(values: np.ndarray) -> np.ndarray:
            return np.bincount(precinct, weights=values, minlength=n.size).astype(float)

        return RateCounts(total(answered_yes.astype(float)), n.astype(float), total(score), total(score * (1 - score)))


def run(
    detectors: dict[str, TrendDetector],
    voters: Voters,
    days: range,
    rng: np.random.Generator,
    events: dict[int, tuple[str, np.ndarray, float]] | None = None,
) -> dict[str, list[TrendFlag]]:
    """Feed daily windows; `events[day] = (attribute, precinct mask, value)` changes the voters that day."""
    flags: dict[str, list[TrendFlag]] = {name: [] for name in detectors}
    for day in days:
        for attribute, mask, value in [(events or {})[day]] if day in (events or {}) else []:
            getattr(voters, attribute)[mask] = value
        counts = voters.day(rng)
        for name, detector in detectors.items():
            flags[name].extend(detector.update(day_span(day), counts))
    return flags


def test_contact_mix_shift_moves_the_raw_rate_but_not_the_residual() -> None:
    geo = hierarchy(3, 2, 25)
    rng = np.random.default_rng(21)
    voters = Voters(np.full(geo.n_precincts, 20.0), rng.uniform(0.3, 0.6, geo.n_precincts))
    region0 = geo.precinct_to("region") == 0
    detectors = {
        "raw": TrendDetector(geo, support_rate_spec()),
        "residual": TrendDetector(geo, support_residual_spec()),
    }
    # Canvassers start reaching more supporters in region 0 (mean score +15 points); nobody changes their mind.
    flags = run(detectors, voters, range(45), rng, {30: ("mix", region0, 0.15)})
    after = {
        name: [f for f in fl if f.status == "new" and f.raised_at > day_span(30).start] for name, fl in flags.items()
    }
    raw_region0 = [f for f in after["raw"] if f.region_id == "R0" and f.direction == "up"]
    assert any(f.level in ("region", "county") for f in raw_region0), "the raw rate did move"
    assert after["residual"] == []


def test_region_wide_shift_is_flagged_though_no_precinct_is() -> None:
    geo = hierarchy(2, 4, 25)
    rng = np.random.default_rng(22)
    voters = Voters(np.full(geo.n_precincts, 8.0), rng.uniform(0.3, 0.6, geo.n_precincts))
    region0 = geo.precinct_to("region") == 0
    detector = TrendDetector(geo, support_residual_spec())
    flags = run({"d": detector}, voters, range(40), rng, {30: ("opinion", region0, 0.06)})["d"]
    new = [f for f in flags if f.status == "new"]
    region_flags = [f for f in new if f.level == "region" and f.unit_id == "R0" and f.direction == "up"]
    assert region_flags, "a 6-point region-wide shift must be flagged"
    flag = region_flags[0]
    assert flag.raised_at - day_span(30).start <= timedelta(days=4)
    assert abs((flag.onset - day_span(30).start).days) <= 2
    assert flag.effect == pytest.approx(0.06, abs=0.03) and flag.z_score > 3
    assert not [f for f in new if f.level == "precinct" and f.region_id == "R0"]


def test_a_flag_is_raised_once_updated_and_closed() -> None:
    geo = hierarchy(1, 2, 25)
    rng = np.random.default_rng(23)
    volume = np.full(geo.n_precincts, 10.0)
    volume[0] = 60.0
    voters = Voters(volume, rng.uniform(0.3, 0.6, geo.n_precincts))
    target = np.arange(geo.n_precincts) == 0
    detector = TrendDetector(geo, support_residual_spec())
    events = {30: ("opinion", target, 0.25), 37: ("opinion", target, 0.0)}
    flags = [f for f in run({"d": detector}, voters, range(50), rng, events)["d"] if f.unit_id == geo.precinct_ids[0]]
    up = [f for f in flags if f.direction == "up"]
    assert [f.status for f in up].count("new") == 1
    assert [f.status for f in up].count("closed") == 1
    assert len({f.flag_id for f in up}) == 1
    first = up[0]
    assert first.status == "new" and abs((first.onset - day_span(30).start).days) <= 2
    # The realised shift: +25 points of support, less what the ceiling of 100% takes from high scorers.
    scores = np.random.default_rng(0).beta(3 * voters.mean_score[0], 3 * (1 - voters.mean_score[0]), 10**6)
    realised = float(np.mean(np.clip(scores + 0.25, 0, 1) - scores))
    during = [f for f in up if f.window_end <= day_span(37).start][-1]  # the episode's figures when it ended
    assert first.effect > 0.08 and during.effect == pytest.approx(realised, abs=0.07)
    assert up[-1].status == "closed" and up[-1].window_end >= day_span(37).start + timedelta(hours=72)
    assert first.to_dict()["onset"] == first.onset.isoformat()


def test_state_survives_json_and_a_replayed_window_is_ignored() -> None:
    geo = hierarchy(2, 2, 25)
    voters_seed, days = 24, 36
    region1 = geo.precinct_to("region") == 1
    events = {18: ("opinion", region1, -0.1)}

    def fresh() -> tuple[Voters, np.random.Generator]:
        rng = np.random.default_rng(voters_seed)
        return Voters(np.full(geo.n_precincts, 15.0), rng.uniform(0.3, 0.6, geo.n_precincts)), rng

    voters, rng = fresh()
    continuous = TrendDetector(geo, support_residual_spec())
    expected = run({"d": continuous}, voters, range(days), rng, events)["d"]

    voters, rng = fresh()
    first = TrendDetector(geo, support_residual_spec())
    before = run({"d": first}, voters, range(20), rng, events)["d"]
    saved = json.loads(json.dumps(first.to_state()))
    restored = TrendDetector.from_state(geo, support_residual_spec(), saved)
    assert restored.update(day_span(19), voters.day(np.random.default_rng(0))) == []  # already seen
    after = run({"d": restored}, voters, range(20, days), rng, events)["d"]

    assert [f.to_dict() for f in before + after] == [f.to_dict() for f in expected]
    assert any(f.status == "new" for f in after), "the test needs flags after the restart"
    assert json.dumps(restored.to_state()) == json.dumps(continuous.to_state())


def test_count_detector_learns_the_hour_of_week_and_catches_a_surge() -> None:
    geo = hierarchy(2, 2, 25)
    rng = np.random.default_rng(25)
    hourly = rng.gamma(4.0, 0.5 / 4.0, geo.n_precincts)  # ~0.5 signups an hour on average
    cycle = 1 + 0.9 * np.sin((np.arange(24) - 9) * np.pi / 12)  # evenings busy, nights near zero
    region1 = geo.precinct_to("region") == 1
    detector = TrendDetector(geo, signup_spec("facebook"))
    flags: list[TrendFlag] = []
    surge_day = 35
    for hour in range(42 * 24):
        day = hour // 24
        rate = hourly * cycle[hour % 24] * np.where(region1 & (day >= surge_day), 1.6, 1.0)
        start = START + timedelta(hours=hour)
        flags += detector.update(
            WindowSpan(start, start + timedelta(hours=1)), EventCounts(rng.poisson(rate).astype(float))
        )
    new = [f for f in flags if f.status == "new"]
    surge_start = START + timedelta(days=surge_day)
    # Watched from day 14 (a week of guard, a week of baseline) to day 35: 6 region-weeks at a budget of
    # 0.5 false alarms each, so about 3 at most are allowed (a longer null run measured 0.32 per region-week).
    assert len([f for f in new if f.raised_at <= surge_start]) <= 3
    caught = [f for f in new if f.region_id == "R1" and f.direction == "up" and f.level != "precinct"]
    assert caught and caught[0].raised_at - surge_start <= timedelta(days=1)
    assert caught[0].effect_kind == "ratio" and caught[0].effect == pytest.approx(0.6, abs=0.3)
    assert len([f for f in new if f.region_id == "R0"]) <= 2


def test_inputs_are_checked() -> None:
    geo = hierarchy(1, 1, 5)
    detector = TrendDetector(geo, support_residual_spec())
    ones = np.ones(5)
    with pytest.raises(ValueError, match="exceed"):
        detector.update(day_span(0), RateCounts(ones * 2, ones, ones, ones * 0.2))
    with pytest.raises(ValueError, match="shape"):
        detector.update(day_span(0), RateCounts(np.ones(4), np.ones(4), np.ones(4), np.ones(4)))
    with pytest.raises(ValueError, match="model"):
        detector.update(day_span(0), RateCounts(ones, ones))
    with pytest.raises(TypeError):
        detector.update(day_span(0), EventCounts(ones))
    with pytest.raises(ValueError):
        WindowSpan(START, START + timedelta(minutes=30))
