"""The drill-down tree of the dashboard: state → region → county → precinct, built from the geography.

A place's `unit` is the id the page and the alert links use (sinks/alerts/content.py `dashboard_link`):
the state code, the region name, `STATE/County` for a county (the trend agent's county ids, unique
campaign-wide) and the precinct id.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from config.geography import UNASSIGNED, Geography

LEVELS = ("state", "region", "county", "precinct")
CHILD_LEVEL = {"state": "region", "region": "county", "county": "precinct"}
# The aggregate columns that identify a place of each level (sinks/clickhouse/schema.py LEVELS).
KEY_COLUMNS = {
    "state": ("state",),
    "region": ("state", "region"),
    "county": ("state", "region", "county"),
    "precinct": ("state", "region", "county", "precinct_id"),
}


@dataclass(frozen=True, slots=True)
class Place:
    level: str
    state: str
    region: str = ""
    county: str = ""
    precinct: str = ""

    @property
    def keys(self) -> tuple[str, ...]:
        """Values of KEY_COLUMNS[level], in order."""
        return (self.state, self.region, self.county, self.precinct)[: len(KEY_COLUMNS[self.level])]

    @property
    def unit(self) -> str:
        if self.level == "state":
            return self.state
        if self.level == "region":
            return self.region
        if self.level == "county":
            return f"{self.state}/{self.county}"
        return self.precinct

    @property
    def name(self) -> str:
        return self.keys[-1]

    @property
    def assigned(self) -> bool:
        """False for the `unassigned` buckets of events without a precinct: they have no page of their own."""
        return UNASSIGNED not in self.keys

    def json(self) -> dict[str, str]:
        return {"level": self.level, "unit": self.unit, "name": self.name}


def place_from_keys(level: str, keys: tuple[str, ...]) -> Place:
    padded = (*keys, "", "", "")[:4]
    return Place(level, *padded)


class PlaceTree:
    """Every place of the campaign, its children and its ancestors."""

    def __init__(self, geography: Geography) -> None:
        self._children: dict[Place, list[Place]] = defaultdict(list)
        self._by_unit: dict[tuple[str, str], Place] = {}
        for info in sorted(geography.precincts.values(), key=lambda p: p.precinct_id):
            chain = (
                Place("state", info.state),
                Place("region", info.state, info.region),
                Place("county", info.state, info.region, info.county),
                Place("precinct", info.state, info.region, info.county, info.precinct_id),
            )
            for parent, child in itertools.pairwise(chain):
                if child not in self._children[parent]:
                    self._children[parent].append(child)
            for place in chain:
                self._by_unit.setdefault((place.level, place.unit), place)
        for places in self._children.values():
            places.sort(key=lambda p: p.name)
        self.states = sorted(p.state for p in self._by_unit.values() if p.level == "state")

    def find(self, level: str, unit: str) -> Place | None:
        """The place with this unit id; a county may also be named without its state when that is unambiguous."""
        found = self._by_unit.get((level, unit))
        if found is None and level == "county" and "/" not in unit:
            matches = [p for (lv, _), p in self._by_unit.items() if lv == "county" and p.county == unit]
            found = matches[0] if len(matches) == 1 else None
        return found

    def children(self, place: Place) -> list[Place]:
        return list(self._children.get(place, ()))

    @staticmethod
    def crumbs(place: Place) -> list[Place]:
        """The place's ancestors, from the state down, and the place itself."""
        depth = LEVELS.index(place.level)
        return [place_from_keys(LEVELS[i], place.keys[: i + 1]) for i in range(depth + 1)]

    def precincts(self, place: Place) -> list[Place]:
        if place.level == "precinct":
            return [place]
        return [p for child in self.children(place) for p in self.precincts(child)]
