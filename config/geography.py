"""The campaign's geography: precinct → county → region → state, loaded from CSV.

Required header columns: precinct_id, county, region, state. Optional: zip5 (lets a
signup that only gives a zip resolve to a precinct, or at least to a county).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED_COLUMNS = ("precinct_id", "county", "region", "state")
UNASSIGNED = "unassigned"


class GeographyError(ValueError):
    """The geography file is unreadable or inconsistent; the message names the line."""


@dataclass(frozen=True, slots=True)
class PrecinctInfo:
    precinct_id: str
    county: str
    region: str
    state: str


@dataclass(frozen=True)
class Geography:
    precincts: dict[str, PrecinctInfo]
    zip_precincts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_csv(cls, path: Path) -> Geography:
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                return cls.from_rows(csv.DictReader(handle), source=str(path))
        except OSError as exc:
            raise GeographyError(f"cannot read geography file {path}: {exc.strerror}") from exc

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, str]], source: str = "geography") -> Geography:
        precincts: dict[str, PrecinctInfo] = {}
        zips: dict[str, list[str]] = {}
        county_region: dict[str, str] = {}
        header_checked = False
        for line, row in enumerate(rows, start=2):
            if not header_checked:
                missing = [c for c in REQUIRED_COLUMNS if c not in row]
                if missing:
                    raise GeographyError(f"{source}: header lacks columns {missing}; need {list(REQUIRED_COLUMNS)}")
                header_checked = True
            values = {c: (row.get(c) or "").strip() for c in REQUIRED_COLUMNS}
            empty = [c for c, v in values.items() if not v]
            if empty:
                raise GeographyError(f"{source} line {line}: empty {empty}")
            pid = values["precinct_id"]
            if pid == UNASSIGNED:
                raise GeographyError(f"{source} line {line}: {UNASSIGNED!r} is reserved")
            if pid in precincts:
                raise GeographyError(f"{source} line {line}: precinct {pid!r} listed twice")
            county_key = f"{values['state']}/{values['county']}"
            known_region = county_region.setdefault(county_key, values["region"])
            if known_region != values["region"]:
                raise GeographyError(
                    f"{source} line {line}: county {values['county']!r} is in region {known_region!r} "
                    f"on an earlier line and {values['region']!r} here"
                )
            precincts[pid] = PrecinctInfo(pid, values["county"], values["region"], values["state"])
            zip5 = (row.get("zip5") or "").strip()
            if zip5:
                zips.setdefault(zip5, []).append(pid)
        if not precincts:
            raise GeographyError(f"{source}: no precincts")
        return cls(precincts, {z: tuple(p) for z, p in zips.items()})

    @property
    def regions(self) -> frozenset[str]:
        return frozenset(p.region for p in self.precincts.values())

    @property
    def states(self) -> frozenset[str]:
        return frozenset(p.state for p in self.precincts.values())

    def unassigned(self, county: str | None = None, region: str | None = None) -> PrecinctInfo:
        """The bucket for an event whose precinct is unknown: the most specific level known."""
        state = next(iter(sorted(self.states))) if len(self.states) == 1 else UNASSIGNED
        return PrecinctInfo(UNASSIGNED, county or UNASSIGNED, region or UNASSIGNED, state)

    def resolve_zip(self, zip5: str) -> PrecinctInfo:
        """A zip inside one precinct gives that precinct; inside one county, that county's bucket."""
        candidates = [self.precincts[p] for p in self.zip_precincts.get(zip5, ())]
        if len(candidates) == 1:
            return candidates[0]
        counties = {(c.county, c.region) for c in candidates}
        if len(counties) == 1:
            county, region = counties.pop()
            return self.unassigned(county, region)
        regions = {c.region for c in candidates}
        if len(regions) == 1:
            return self.unassigned(None, regions.pop())
        return self.unassigned()
