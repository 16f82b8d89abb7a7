"""A seeded synthetic campaign world: geography (precinct → county → region) and a voter file.

Geography comes from Python's `random` (its streams are stable across versions, so the shipped
config/geography.csv stays reproducible); the voter file from numpy (vectorised: 240k voters in
well under a second). Each voter has a latent support probability from a known logistic model,
kept in `World.true_model` so a learned model can be checked against it. Names come from the pools
of streams/simulation/names.py with their heavy-tailed frequencies: given names follow the voter's
gender, and four voters in five carry their household's family name.

Regenerate the default geography with `python -m streams.simulation.world --write-default`.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from config.geography import Geography
from streams.simulation.names import FAMILY, FAMILY_NAMES, FEMALE_GIVEN, GIVEN_NAMES, MALE_GIVEN

DEFAULT_SEED = 42
GEOGRAPHY_HEADER = ("precinct_id", "county", "region", "state", "zip5")
PARTIES = ("D", "R", "U", "L", "G")
GENDERS = ("F", "M", "X", "U")  # as voter files record it: female, male, nonbinary, unknown
_GENDER_SHARES = (0.52, 0.46, 0.005, 0.015)
# Earlier worlds drew each name as one of 32 from the main stream; those draws are kept as the
# coarse part of each name's uniform (see _names_of), so every other column of a seed's world, and
# its true model, is what it was.
_NAME_STRATA = 32
REFERENCE_YEAR = 2026  # fixed, so ages (and the true model) do not drift with the calendar

_COUNTY_NAMES = (
    "Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Hawthorn", "Juniper", "Linden", "Magnolia",
    "Oakmont", "Pinecrest", "Redbud", "Sassafras", "Tamarack", "Walnut", "Willow", "Aspen", "Buckeye",
    "Chestnut", "Hemlock", "Ironwood", "Laurel", "Sumac",
)  # fmt: skip
_REGION_NAMES = ("Northeast", "Northwest", "Southeast", "Southwest", "Central", "North", "South", "East", "West")
_EMAIL_DOMAINS = ("example.org", "example.com", "example.net")

# The true support model: logit p = intercept + Σ coef·feature + precinct_effect[precinct].
TRUE_INTERCEPT = -0.25
TRUE_COEFFICIENTS: dict[str, float] = {
    "party_D": 1.6,
    "party_R": -1.7,
    "party_L": -0.6,
    "party_G": 0.5,
    "age_decades": -0.12,  # (REFERENCE_YEAR - birth_year - 45) / 10
    "urbanicity": 0.8,  # the precinct's 0..1 urbanicity
}
PRECINCT_EFFECT_SD = 0.35

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Precinct:
    precinct_id: str
    county: str
    region: str
    state: str
    zip5: str
    lat: float
    lon: float
    urbanicity: float


@dataclass(frozen=True, slots=True)
class Voter:
    voter_id: str
    household_id: str
    precinct_id: str
    birth_year: int
    party: str
    support: float  # latent: the probability of answering 1-2 when asked


@dataclass(frozen=True)
class TrueSupportModel:
    """The generating model of support; `features` names the columns of `World.features()`."""

    intercept: float
    coefficients: dict[str, float]
    precinct_effect: FloatArray  # by precinct index, added to the logit

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.coefficients)

    def logit(self, features: FloatArray, precinct_index: IntArray) -> FloatArray:
        coef = np.array([self.coefficients[f] for f in self.features])
        result: FloatArray = self.intercept + features @ coef + self.precinct_effect[precinct_index]
        return result

    def probability(self, features: FloatArray, precinct_index: IntArray) -> FloatArray:
        result: FloatArray = 1.0 / (1.0 + np.exp(-self.logit(features, precinct_index)))
        return result


@dataclass(frozen=True)
class World:
    """Columnar voter file (numpy arrays indexed by voter / household / precinct index)."""

    seed: int
    state: str
    precincts: tuple[Precinct, ...]
    counties: tuple[str, ...]
    regions: tuple[str, ...]
    household_precinct: IntArray  # by household index
    household_first_voter: IntArray  # voters of a household are contiguous
    household_size: IntArray
    household_lat: FloatArray
    household_lon: FloatArray
    voter_household: IntArray  # by voter index
    voter_precinct: IntArray
    birth_year: IntArray
    party: IntArray  # index into PARTIES
    gender: IntArray  # index into GENDERS
    given_name: IntArray  # index into GIVEN_NAMES (streams/simulation/names.py), consistent with gender
    family_name: IntArray  # index into FAMILY_NAMES
    support: FloatArray  # the latent true support probability
    true_model: TrueSupportModel

    @property
    def n_voters(self) -> int:
        return int(self.voter_household.shape[0])

    @property
    def n_households(self) -> int:
        return int(self.household_size.shape[0])

    @property
    def precinct_ids(self) -> tuple[str, ...]:
        return tuple(p.precinct_id for p in self.precincts)

    @staticmethod
    def voter_id(index: int) -> str:
        return f"V{index + 1:08d}"

    @staticmethod
    def household_id(index: int) -> str:
        return f"H{index + 1:07d}"

    def voter(self, index: int) -> Voter:
        household = int(self.voter_household[index])
        return Voter(
            self.voter_id(index),
            self.household_id(household),
            self.precincts[int(self.voter_precinct[index])].precinct_id,
            int(self.birth_year[index]),
            PARTIES[int(self.party[index])],
            float(self.support[index]),
        )

    def given_name_of(self, index: int) -> str:
        return GIVEN_NAMES[int(self.given_name[index])]

    def family_name_of(self, index: int) -> str:
        return FAMILY_NAMES[int(self.family_name[index])]

    def voter_email(self, index: int) -> str:
        given, family = self.given_name_of(index).lower(), self.family_name_of(index).lower()
        return f"{given}.{family}.{index + 1}@{_EMAIL_DOMAINS[index % len(_EMAIL_DOMAINS)]}"

    def features(self) -> FloatArray:
        """The design matrix of the true model, columns in `true_model.features` order."""
        urbanicity = np.array([p.urbanicity for p in self.precincts])[self.voter_precinct]
        return _design_matrix(self.true_model.features, self.party, self.birth_year, urbanicity)

    def geography(self) -> Geography:
        return Geography.from_rows(
            {"precinct_id": p.precinct_id, "county": p.county, "region": p.region, "state": p.state, "zip5": p.zip5}
            for p in self.precincts
        )

    def write_geography_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(GEOGRAPHY_HEADER)
            for p in self.precincts:
                writer.writerow((p.precinct_id, p.county, p.region, p.state, p.zip5))


def build_world(
    seed: int,
    precincts: int = 400,
    counties: int = 8,
    regions: int = 4,
    state: str = "OH",
    voters_per_precinct: int = 600,
) -> World:
    """A reproducible world; `voters_per_precinct` is the mean (real precincts vary in size)."""
    if not 1 <= regions <= counties <= precincts:
        raise ValueError(f"need 1 <= regions <= counties <= precincts, got {regions}, {counties}, {precincts}")
    if precincts > 9999:
        raise ValueError("at most 9999 precincts (ids are P0001..P9999)")
    if voters_per_precinct < 1:
        raise ValueError("voters_per_precinct must be positive")
    rows = _geography(random.Random(seed), precincts, counties, regions, state)
    rng = np.random.default_rng([seed, 1])
    return _voter_file(rng, seed, state, rows, voters_per_precinct)


def _names(base: Sequence[str], count: int, suffix: str, fallback: str) -> tuple[str, ...]:
    return tuple(f"{base[i]}{suffix}" if i < len(base) else f"{fallback} {i + 1}" for i in range(count))


def _geography(rng: random.Random, n_precincts: int, n_counties: int, n_regions: int, state: str) -> list[Precinct]:
    county_names = _names(_COUNTY_NAMES, n_counties, " County", "County")
    region_names = _names(_REGION_NAMES, n_regions, "", "Region")
    # Unequal county sizes (one urban core, rural tails), each at least one precinct.
    weights = [rng.paretovariate(1.5) for _ in range(n_counties)]
    spare = n_precincts - n_counties
    sizes = [1 + int(spare * w / sum(weights)) for w in weights]
    for i in range(n_precincts - sum(sizes)):
        sizes[i % n_counties] += 1
    urban_core = max(range(n_counties), key=lambda i: sizes[i])

    # Zips group consecutive precincts (1-6 per zip); a zip left open at a county line may run on
    # into the next county, so some zips straddle two counties (they resolve to no single precinct).
    zip_code = 43001
    left_in_zip = 0
    rows: list[Precinct] = []
    for county in range(n_counties):
        region = region_names[county % n_regions]
        center_lat, center_lon = rng.uniform(38.6, 41.8), rng.uniform(-84.6, -80.7)
        county_urban = 0.75 if county == urban_core else rng.uniform(0.1, 0.5)
        left_in_zip = max(left_in_zip, 1) if county > 0 and rng.random() < 0.5 else 0
        for _ in range(sizes[county]):
            if left_in_zip == 0:
                zip_code += rng.randint(1, 7)
                left_in_zip = rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6))
            left_in_zip -= 1
            urbanicity = min(1.0, max(0.0, rng.gauss(county_urban, 0.15)))
            rows.append(
                Precinct(
                    precinct_id=f"P{len(rows) + 1:04d}",
                    county=county_names[county],
                    region=region,
                    state=state,
                    zip5=f"{zip_code:05d}",
                    lat=round(center_lat + rng.gauss(0, 0.06), 5),
                    lon=round(center_lon + rng.gauss(0, 0.08), 5),
                    urbanicity=round(urbanicity, 4),
                )
            )
    return rows


def _voter_file(
    rng: np.random.Generator,
    seed: int,
    state: str,
    rows: list[Precinct],
    voters_per_precinct: int,
) -> World:
    n_precincts = len(rows)
    precinct_voters = np.maximum(
        1, np.rint(voters_per_precinct * rng.lognormal(0.0, 0.25, n_precincts)).astype(np.int64)
    )
    # Household sizes 1-4; the last household of a precinct is trimmed to fit its voter count.
    size_draws = rng.choice(np.arange(1, 5), p=[0.35, 0.38, 0.17, 0.10], size=int(precinct_voters.sum()))
    sizes: list[IntArray] = []
    offset = 0
    for n in precinct_voters.tolist():
        draws = size_draws[offset : offset + n]
        offset += n
        cut = int(np.searchsorted(np.cumsum(draws), n))
        hh = draws[: cut + 1].copy()
        hh[-1] -= int(hh.sum()) - n
        sizes.append(hh)
    household_size = np.concatenate(sizes).astype(np.int64)
    household_precinct = np.repeat(np.arange(n_precincts), [len(s) for s in sizes]).astype(np.int64)
    household_first_voter = (np.cumsum(household_size) - household_size).astype(np.int64)
    n_households = int(household_size.shape[0])
    voter_household = np.repeat(np.arange(n_households), household_size).astype(np.int64)
    voter_precinct = household_precinct[voter_household]
    n_voters = int(voter_household.shape[0])

    lat = np.array([p.lat for p in rows])
    lon = np.array([p.lon for p in rows])
    household_lat = np.round(lat[household_precinct] + rng.normal(0, 0.006, n_households), 6)
    household_lon = np.round(lon[household_precinct] + rng.normal(0, 0.008, n_households), 6)

    # Party leans with urbanicity; ages 18-95.
    urbanicity = np.array([p.urbanicity for p in rows])[voter_precinct]
    p_d = 0.22 + 0.30 * urbanicity
    p_r = 0.46 - 0.30 * urbanicity
    # Cumulative shares in PARTIES order: D, R, U (to 0.95), L (to 0.97), G.
    cumulative = np.column_stack([p_d, p_d + p_r, np.full(n_voters, 0.95), np.full(n_voters, 0.97)])
    party = (rng.random(n_voters)[:, None] >= cumulative).sum(axis=1).astype(np.int64)
    age = np.clip(np.rint(rng.normal(47, 17, n_voters)), 18, 95).astype(np.int64)
    birth_year = REFERENCE_YEAR - age

    household_stratum = rng.integers(0, _NAME_STRATA, n_households)
    # One in five voters does not share the household's family name.
    other = rng.random(n_voters) < 0.2
    family_stratum = rng.integers(0, _NAME_STRATA, n_voters)
    given_stratum = rng.integers(0, _NAME_STRATA, n_voters)
    gender, given_name, family_name = _names_of(
        np.random.default_rng([seed, 2]), voter_household, other, household_stratum, family_stratum, given_stratum
    )

    model = TrueSupportModel(
        intercept=TRUE_INTERCEPT,
        coefficients=dict(TRUE_COEFFICIENTS),
        precinct_effect=rng.normal(0.0, PRECINCT_EFFECT_SD, n_precincts),
    )
    support = model.probability(_design_matrix(model.features, party, birth_year, urbanicity), voter_precinct)
    return World(
        seed=seed,
        state=state,
        precincts=tuple(rows),
        counties=tuple(dict.fromkeys(p.county for p in rows)),
        regions=tuple(dict.fromkeys(p.region for p in rows)),
        household_precinct=household_precinct,
        household_first_voter=household_first_voter,
        household_size=household_size,
        household_lat=household_lat,
        household_lon=household_lon,
        voter_household=voter_household,
        voter_precinct=voter_precinct,
        birth_year=birth_year,
        party=party,
        gender=gender,
        given_name=given_name,
        family_name=family_name,
        support=support,
        true_model=model,
    )


def _names_of(
    rng: np.random.Generator,
    voter_household: IntArray,
    own_family: npt.NDArray[np.bool_],
    household_stratum: IntArray,
    family_stratum: IntArray,
    given_stratum: IntArray,
) -> tuple[IntArray, IntArray, IntArray]:
    """Gender, given and family name per voter, from the pools' frequencies (streams/simulation/names.py).

    Each name's uniform is (stratum + v) / 32, the stratum from the world's main stream and v from
    this one: a uniform all the same, drawn without moving the main stream off its old course.
    Given names follow gender (nonbinary and unknown voters draw from either pool).
    """
    n_voters = voter_household.shape[0]
    gender = np.asarray(rng.choice(len(GENDERS), size=n_voters, p=_GENDER_SHARES), dtype=np.int64)
    female = (gender == GENDERS.index("F")) | ((gender >= GENDERS.index("X")) & (rng.random(n_voters) < 0.5))
    given_uniform = (given_stratum + rng.random(n_voters)) / _NAME_STRATA
    given_name = np.where(
        female, FEMALE_GIVEN.ranks(given_uniform), len(FEMALE_GIVEN.names) + MALE_GIVEN.ranks(given_uniform)
    ).astype(np.int64)
    household_family = FAMILY.ranks((household_stratum + rng.random(household_stratum.shape[0])) / _NAME_STRATA)
    own = FAMILY.ranks((family_stratum + rng.random(n_voters)) / _NAME_STRATA)
    family_name = np.where(own_family, own, household_family[voter_household]).astype(np.int64)
    return gender, given_name, family_name


def _design_matrix(names: Sequence[str], party: IntArray, birth_year: IntArray, urbanicity: FloatArray) -> FloatArray:
    columns = {
        "party_D": party == PARTIES.index("D"),
        "party_R": party == PARTIES.index("R"),
        "party_L": party == PARTIES.index("L"),
        "party_G": party == PARTIES.index("G"),
        "age_decades": (REFERENCE_YEAR - birth_year - 45) / 10.0,
        "urbanicity": urbanicity,
    }
    return np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in names])


def write_default_geography(path: Path | None = None) -> Path:
    """Write the shipped default geography: build_world(seed=42) with its default sizes."""
    from config.settings import DEFAULT_GEOGRAPHY

    target = path or DEFAULT_GEOGRAPHY
    build_world(DEFAULT_SEED).write_geography_csv(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.simulation.world", description=__doc__)
    parser.add_argument("--write-default", action="store_true", help="write config/geography.csv (seed 42)")
    parser.add_argument("--output", type=Path, help="write there instead of config/geography.csv")
    args = parser.parse_args(argv)
    if not args.write_default:
        parser.print_help()
        return 2
    written = write_default_geography(args.output)
    print(f"wrote {written}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
