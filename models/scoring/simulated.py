"""Labelled contacts drawn from the simulator's world, for tuning, tests and benchmarks.

`streams.simulation.world` is pure numpy (no Kafka), so importing it keeps this package free of
broker and warehouse code. Labels follow the simulator's own rule (streams/simulation/campaign.py,
`_support_level`): a contacted voter answers 1-2 with their true support probability.

Contacts come in turf-sized runs: a run of `run_length` voters from one precinct at a time, runs
in random order, as the IDs of many walk shifts interleave in a live campaign. That ordering is
harder for an online learner than shuffled voters, and closer to what it will see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.scoring.features import FeatureSpec, FieldSpec
from streams.simulation.world import PARTIES, World

# The fields a simulated world has (its voter file has no gender, registration or vote history).
WORLD_SPEC = FeatureSpec(
    version="simulated-v1",
    hash_bits=18,
    fields=(
        FieldSpec("party"),
        FieldSpec("birth_year", "banded", (1946.0, 1956.0, 1966.0, 1976.0, 1986.0, 1996.0)),
        FieldSpec("precinct_id"),
        FieldSpec("county"),
        FieldSpec("region"),
        FieldSpec("zip5"),
        FieldSpec("contact_type", default="walk"),
    ),
)


def voter_columns(world: World) -> dict[str, npt.NDArray[np.object_]]:
    """The world's voter file as columns (object arrays of Python values), one row per voter."""
    precinct = world.voter_precinct

    def by_precinct(values: list[str]) -> npt.NDArray[np.object_]:
        return np.array(values, dtype=object)[precinct]

    return {
        "voter_id": np.array([World.voter_id(i) for i in range(world.n_voters)], dtype=object),
        "party": np.array(PARTIES, dtype=object)[world.party],
        "birth_year": world.birth_year.astype(object),
        "precinct_id": by_precinct([p.precinct_id for p in world.precincts]),
        "county": by_precinct([p.county for p in world.precincts]),
        "region": by_precinct([p.region for p in world.precincts]),
        "zip5": by_precinct([p.zip5 for p in world.precincts]),
    }


@dataclass(frozen=True)
class ContactStream:
    """Voter indices in contact order, their labels and their true support probabilities."""

    voters: npt.NDArray[np.int64]
    labels: npt.NDArray[np.float64]
    true_probability: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.voters.shape[0])


def contact_stream(world: World, n_labels: int, seed: int, run_length: int = 30) -> ContactStream:
    """`n_labels` contacts (voters may repeat across runs) in precinct runs, labels ~ Bernoulli(support)."""
    rng = np.random.default_rng([seed, 7])
    order = np.argsort(world.voter_precinct, kind="stable")
    starts = np.searchsorted(world.voter_precinct[order], np.arange(len(world.precincts)))
    sizes = np.diff(np.append(starts, world.n_voters))
    n_runs = -(-n_labels // run_length)
    precinct = rng.integers(0, len(world.precincts), n_runs)
    offsets = rng.random((n_runs, run_length))
    picks = starts[precinct][:, None] + (offsets * sizes[precinct][:, None]).astype(np.int64)
    voters = order[picks.ravel()[:n_labels]].astype(np.int64)
    p = world.support[voters]
    labels = (rng.random(n_labels) < p).astype(np.float64)
    return ContactStream(voters, labels, p)
