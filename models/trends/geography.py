"""The precinct → county → region tree that trend detectors roll counts up.

Detectors take per-precinct columns (numpy arrays in `precinct_ids` order) and sum them to
counties and regions with `roll_up`, so a movement spread thinly over many small precincts is
still seen where the counts are large enough to mean something.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from models.trends.types import FloatArray, IntArray

Level = Literal["precinct", "county", "region"]
LEVELS: tuple[Level, ...] = ("precinct", "county", "region")


@dataclass(frozen=True)
class Hierarchy:
    """Unit ids per level and the index maps between levels (county ids must be unique campaign-wide)."""

    precinct_ids: tuple[str, ...]
    county_ids: tuple[str, ...]
    region_ids: tuple[str, ...]
    precinct_county: IntArray  # by precinct index → county index
    county_region: IntArray  # by county index → region index

    def __post_init__(self) -> None:
        if len(self.precinct_county) != len(self.precinct_ids) or len(self.county_region) != len(self.county_ids):
            raise ValueError("index maps do not match the id lists")
        if len(set(self.precinct_ids)) != len(self.precinct_ids) or len(set(self.county_ids)) != len(self.county_ids):
            raise ValueError("unit ids must be unique within a level")

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str]]) -> Hierarchy:
        """Rows of (precinct_id, county_id, region_id), in the order the input columns will use."""
        precincts: list[str] = []
        counties: dict[str, int] = {}
        regions: dict[str, int] = {}
        precinct_county: list[int] = []
        county_region: list[int] = []
        for precinct, county, region in rows:
            region_index = regions.setdefault(region, len(regions))
            if county not in counties:
                counties[county] = len(counties)
                county_region.append(region_index)
            elif county_region[counties[county]] != region_index:
                raise ValueError(f"county {county!r} appears in two regions")
            precincts.append(precinct)
            precinct_county.append(counties[county])
        if not precincts:
            raise ValueError("no precincts")
        return cls(
            tuple(precincts),
            tuple(counties),
            tuple(regions),
            np.asarray(precinct_county, dtype=np.int64),
            np.asarray(county_region, dtype=np.int64),
        )

    @property
    def n_precincts(self) -> int:
        return len(self.precinct_ids)

    def unit_ids(self, level: Level) -> tuple[str, ...]:
        if level == "precinct":
            return self.precinct_ids
        return self.county_ids if level == "county" else self.region_ids

    def size(self, level: Level) -> int:
        return len(self.unit_ids(level))

    def precinct_to(self, level: Level) -> IntArray:
        """For each precinct, the index of the unit containing it at `level`."""
        if level == "precinct":
            return np.arange(self.n_precincts, dtype=np.int64)
        if level == "county":
            return self.precinct_county
        result: IntArray = self.county_region[self.precinct_county]
        return result

    def region_of(self, level: Level) -> IntArray:
        """For each unit of `level`, its region index."""
        if level == "precinct":
            result: IntArray = self.county_region[self.precinct_county]
            return result
        if level == "county":
            return self.county_region
        return np.arange(len(self.region_ids), dtype=np.int64)

    def roll_up(self, values: FloatArray, level: Level) -> FloatArray:
        """Sum per-precinct values to the units of `level`."""
        if level == "precinct":
            return values
        summed = np.bincount(self.precinct_to(level), weights=values, minlength=self.size(level))
        return summed.astype(np.float64, copy=False)

    def members(self, level: Level, unit: int) -> IntArray:
        """Precinct indices inside one unit."""
        found: IntArray = np.flatnonzero(self.precinct_to(level) == unit).astype(np.int64)
        return found
