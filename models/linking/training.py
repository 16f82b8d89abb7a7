"""Estimating the linkage model from unlabelled people and the voter file, the way Splink does.

1. u by random sampling: u[k][l] is the share of random (person, voter) pairs, almost all
   non-matches, taking level l (Splink's `estimate_u_using_random_sampling`).
2. m by EM, u held fixed, in several sessions each blocked on one key; a session leaves out the
   comparisons its key fixes (pairs blocked on family name + zip all agree on both, which says
   nothing about how often matches do), and each comparison's m is the mean over the sessions
   that estimated it (Splink's `estimate_parameters_using_expectation_maximisation`; rationale:
   https://moj-analytical-services.github.io/splink/topic_guides/training/training_rationale.html).
3. Refinement: EM over every person's full candidate set with the model the matcher uses (term
   frequencies, and at most one voter per person, so a person's candidates share one unit of
   posterior). The blocked sessions' EM treats each pair on its own, and non-matches that happen
   to agree on a field leak into m (in our simulation it put 4% of matches at "birth years
   differ", where the truth was 0%); the shared posterior keeps them out. This step also
   estimates the match rate (the share of people on the voter file): the mean posterior that a
   person is one of their candidates.

Address agreement between non-matches (a household's other members, a previous occupant) is rare
but decides between household members, so its u comes from a larger sample (`address_u_pairs`,
pre-filtered on equal house numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.linking.compare import Comparer
from models.linking.em import expectation_maximisation
from models.linking.encode import ABSENT, Encoded
from models.linking.index import BlockingKey, VoterIndex
from models.linking.levels import ADDRESS, BIRTH_YEAR, COMPARISONS, EMAIL, FAMILY, GIVEN, PHONE, ZIP5, Address
from models.linking.model import LinkageModel
from models.linking.records import PersonRecord
from models.linking.scoring import match_weights, outside_odds, posteriors

F64 = npt.NDArray[np.float64]

# The comparisons a blocking key pins down: left out of the EM session blocked on it.
FIXED_BY_KEY: dict[BlockingKey, tuple[int, ...]] = {
    BlockingKey.EMAIL: (EMAIL,),
    BlockingKey.PHONE: (PHONE,),
    BlockingKey.FAMILY_ZIP: (FAMILY, ZIP5),
    BlockingKey.NAME_YEAR: (GIVEN, FAMILY, BIRTH_YEAR),
    BlockingKey.SOUNDEX_INITIAL_ZIP: (GIVEN, FAMILY, ZIP5),
    BlockingKey.SOUNDEX_INITIAL_YEAR: (GIVEN, FAMILY, BIRTH_YEAR),
    BlockingKey.ADDRESS: (ADDRESS,),
}

# Starting m (and the fallback for a comparison no session estimates): rough shares for matches.
DEFAULT_M: tuple[tuple[float, ...], ...] = (
    (0.85, 0.05, 0.03, 0.02, 0.02, 0.01, 0.02),  # given: exact nickname typo jw_high jw_mid initial else
    (0.88, 0.03, 0.02, 0.01, 0.02, 0.04),  # family: exact typo jw_high shared_part jw_mid else
    (0.93, 0.04, 0.03),  # birth year: exact one_off else
    (0.90, 0.10),  # zip5: exact else
    (0.80, 0.05, 0.03, 0.01, 0.11),  # address: exact same_building similar_street household else
    (0.60, 0.01, 0.39),  # email: exact household else
    (0.60, 0.01, 0.39),  # phone
)
_U_PSEUDO_COUNT = 0.5  # a level never seen among random pairs still gets a finite weight


@dataclass(frozen=True)
class TrainingConfig:
    sessions: tuple[BlockingKey, ...] = (BlockingKey.FAMILY_ZIP, BlockingKey.NAME_YEAR, BlockingKey.EMAIL)
    u_pairs: int = 1_000_000
    address_u_pairs: int = 20_000_000
    seed: int = 0
    max_iterations: int = 200
    refine_iterations: int = 50
    min_session_pairs: int = 200
    # The share of incoming people on the voter file, if the campaign knows it (its match rate so
    # far); None estimates it. The estimate runs low when many people give too little to be found.
    match_rate: float | None = None


@dataclass(frozen=True)
class SessionReport:
    blocking: BlockingKey
    pairs: int
    estimated: tuple[str, ...]  # comparison names
    match_share: float
    iterations: int
    converged: bool


@dataclass(frozen=True)
class TrainingReport:
    model: LinkageModel
    sessions: tuple[SessionReport, ...]
    session_m: tuple[tuple[float, ...], ...]  # m after the blocked sessions, before refinement
    refine_iterations: int


def _level_shares(levels: npt.NDArray[np.int8], n_levels: int) -> F64:
    counts = np.bincount(levels, minlength=n_levels + 1)[:n_levels].astype(np.float64) + _U_PSEUDO_COUNT
    result: F64 = counts / counts.sum()
    return result


def estimate_u(
    comparer: Comparer, records: Sequence[PersonRecord], pairs: int, seed: int, address_pairs: int = 0
) -> tuple[F64, ...]:
    """u per comparison level from `pairs` random (person, voter) pairs (`address_pairs` for the address)."""
    index = comparer.index
    people = index.encode(records)
    rng = np.random.default_rng(seed)
    record = np.sort(rng.integers(0, len(records), pairs)).astype(np.int32)
    voter = rng.integers(0, index.n_voters, pairs).astype(np.int32)
    levels = comparer.compare(people, record, voter)
    estimates = [_level_shares(levels[:, k], spec.n_levels) for k, spec in enumerate(COMPARISONS)]
    if address_pairs > pairs:
        estimates[ADDRESS] = _address_u(comparer, people, address_pairs, rng)
    return tuple(estimates)


def _address_u(comparer: Comparer, people: Encoded, pairs: int, rng: np.random.Generator) -> F64:
    """Address u from many random pairs: only pairs with equal house numbers can agree, so only they are compared."""
    index = comparer.index
    spec = COMPARISONS[ADDRESS]
    counts = np.zeros(spec.n_levels + 1)
    chunk = 2_000_000
    informative = 0
    for start in range(0, pairs, chunk):
        size = min(chunk, pairs - start)
        record = rng.integers(0, len(people), size).astype(np.int32)
        voter = rng.integers(0, index.n_voters, size).astype(np.int32)
        present = (people.street[record] != ABSENT) & (index.street[voter] >= 0)
        informative += int(present.sum())
        close = present & (people.house_number[record] == index.house_number[voter])
        where = np.flatnonzero(close)
        levels = comparer.compare(people, record[where], voter[where])[:, ADDRESS]
        counts += np.bincount(levels, minlength=spec.n_levels + 1)
    counts[Address.ELSE] += informative - counts[: spec.n_levels].sum()  # the rest differ
    shares = counts[: spec.n_levels] + _U_PSEUDO_COUNT
    result: F64 = shares / shares.sum()
    return result


def train(
    index: VoterIndex,
    records: Sequence[PersonRecord],
    config: TrainingConfig | None = None,
    comparer: Comparer | None = None,
) -> TrainingReport:
    """A linkage model for linking people like `records` to the indexed voter file."""
    config = config or TrainingConfig()
    if not records:
        raise ValueError("training needs people to learn from")
    comparer = comparer or Comparer(index)
    u = estimate_u(comparer, records, config.u_pairs, config.seed, config.address_u_pairs)
    people = index.encode(records)
    estimates: list[list[F64]] = [[] for _ in COMPARISONS]
    reports = []
    for key in config.sessions:
        pairs = index.candidates(people, keys=[key])
        if len(pairs) < config.min_session_pairs:
            continue
        levels = comparer.compare(people, pairs.record, pairs.voter)
        kept = [k for k in range(len(COMPARISONS)) if k not in FIXED_BY_KEY[key]]
        result = expectation_maximisation(
            levels[:, kept],
            [COMPARISONS[k].n_levels for k in kept],
            m=[np.array(DEFAULT_M[k]) for k in kept],
            u=[u[k] for k in kept],
            match_share=min(0.5, len(records) / len(pairs)),
            fix_u=True,
            ignored=[COMPARISONS[k].neutral for k in kept],
            max_iterations=config.max_iterations,
        )
        for k, m in zip(kept, result.m, strict=True):
            estimates[k].append(m)
        reports.append(
            SessionReport(
                key, len(pairs), tuple(COMPARISONS[k].name for k in kept), result.match_share, result.iterations,
                result.converged,
            )
        )  # fmt: skip
    session_m = tuple(
        tuple(float(p) for p in (np.mean(found, axis=0) if found else np.array(DEFAULT_M[k])))
        for k, found in enumerate(estimates)
    )
    u_tuple = tuple(tuple(float(p) for p in x) for x in u)
    model, iterations = refine(
        index, comparer, people, session_m, u_tuple, config.refine_iterations, match_rate=config.match_rate
    )
    return TrainingReport(model, tuple(reports), session_m, iterations)


def refine(
    index: VoterIndex,
    comparer: Comparer,
    people: Encoded,
    m: tuple[tuple[float, ...], ...],
    u: tuple[tuple[float, ...], ...],
    iterations: int,
    tolerance: float = 1e-5,
    match_rate: float | None = None,
) -> tuple[LinkageModel, int]:
    """EM for m (and the match rate unless given) over full candidate sets, each person's posterior
    summing to at most 1."""
    pairs = index.candidates(people)
    levels = comparer.compare(people, pairs.record, pairs.voter)
    informative = [
        np.isin(levels[:, k], [lvl for lvl in range(spec.n_levels) if lvl not in spec.neutral])
        for k, spec in enumerate(COMPARISONS)
    ]
    model = LinkageModel(m, u, match_rate or 0.5, index.n_voters)
    for iteration in range(1, iterations + 1):
        weights = match_weights(model, index, levels, pairs.voter)
        outside = outside_odds(model, index, people)
        probability, on_file = posteriors(model.prior_log2_odds() + weights, pairs.record, len(people), outside)
        new_m = []
        for k, spec in enumerate(COMPARISONS):
            weight = np.where(informative[k], probability, 0.0)
            counts = np.bincount(levels[:, k], weights=weight, minlength=spec.n_levels + 1)[: spec.n_levels]
            counts = np.where([lvl not in spec.neutral for lvl in range(spec.n_levels)], counts + 1e-3, 0.0)
            shares = counts / counts.sum()
            new_m.append(tuple(float(x) for x in shares))
        rate = match_rate or float(np.clip(on_file.mean(), 1e-4, 1 - 1e-4))
        change = max(
            abs(rate - model.match_rate),
            *(abs(a - b) for x, y in zip(new_m, model.m, strict=True) for a, b in zip(x, y, strict=True)),
        )
        model = LinkageModel(tuple(new_m), u, rate, index.n_voters)
        if change < tolerance:
            return model, iteration
    return model, iterations
