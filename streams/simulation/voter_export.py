"""The simulated world's voter file, in the format `groundswell voters load` reads (CSV or Parquet).

Identity columns (names, address, appended email and phone) come from streams/simulation/identities.py,
so linking (issue #5) is measured against the same file. Gender, registration date and vote history
are not part of the true support model; they are drawn here, seeded by the world, so the file looks
like a real one (and a learned model must find them uninformative).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from streams.simulation.identities import voter_file
from streams.simulation.world import DEFAULT_SEED, GENDERS, PARTIES, REFERENCE_YEAR, World, build_world

# Recent elections, newest first, with a turnout that rises with age (a rough national pattern).
ELECTIONS = ("G2024", "P2024", "G2022", "P2022", "G2020")
_BASE_TURNOUT = {"G2024": 0.62, "P2024": 0.22, "G2022": 0.47, "P2022": 0.18, "G2020": 0.64}


def voter_file_table(world: World) -> pa.Table:
    """One row per voter, columns as docs/data-dictionary.md names them."""
    identity = voter_file(world)
    n = world.n_voters
    rng = np.random.default_rng([world.seed, 0x70FE])
    gender = np.array(GENDERS)[world.gender]  # the world's, so given names and gender agree
    age = REFERENCE_YEAR - world.birth_year
    first_eligible = world.birth_year + 18
    registered_year = first_eligible + (rng.random(n) * np.maximum(1, REFERENCE_YEAR - first_eligible)).astype(int)
    registered_day = rng.integers(0, 365, n)
    epoch = dt.date(1970, 1, 1)
    registration = [
        (dt.date(int(y), 1, 1) + dt.timedelta(days=int(d)) - epoch).days
        for y, d in zip(registered_year.tolist(), registered_day.tolist(), strict=True)
    ]
    lift = np.clip((age - 18) / 60, 0.0, 1.0) * 0.35  # older voters turn out more
    voted = {e: rng.random(n) < np.clip(_BASE_TURNOUT[e] + lift - 0.15, 0.02, 0.98) for e in ELECTIONS}
    eligible = {e: registered_year <= int(e[1:]) for e in ELECTIONS}
    history = [";".join(e for e in ELECTIONS if voted[e][i] and eligible[e][i]) for i in range(n)]
    precinct_ids = world.precinct_ids
    return pa.table(
        {
            "voter_id": identity.voter_id,
            "household_id": [World.household_id(h) for h in world.voter_household.tolist()],
            "precinct_id": [precinct_ids[p] for p in world.voter_precinct.tolist()],
            "given_name": identity.given_name,
            "family_name": identity.family_name,
            "birth_year": pa.array(identity.birth_year, pa.int32()),
            "gender": gender.tolist(),
            "party": [PARTIES[p] for p in world.party.tolist()],
            "registration_date": pa.array(registration, pa.date32()),
            "vote_history": history,
            "address_line1": identity.address_line1,
            "zip5": identity.zip5,
            "email": pa.array(identity.email, pa.string()),
            "phone": pa.array(identity.phone, pa.string()),
        }
    )


def write_voter_file(world: World, path: Path) -> int:
    """Write the file (format by suffix); returns the number of voters."""
    table = voter_file_table(world)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path)
    return int(table.num_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="write the simulated world's voter file")
    parser.add_argument("path", type=Path, help="output .csv or .parquet")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--precincts", type=int, default=400)
    parser.add_argument("--voters-per-precinct", type=int, default=600)
    args = parser.parse_args()
    world = build_world(args.seed, precincts=args.precincts, voters_per_precinct=args.voters_per_precinct)
    print(f"wrote {write_voter_file(world, args.path):,} voters to {args.path}")


if __name__ == "__main__":
    main()
