"""Match weights of candidate pairs and each person's posterior over their candidates.

A person is at most one voter (a voter file without duplicate registrations), so the posterior
is over "which candidate, if any": with odds_j = prior odds x Bayes factor_j,

    P(voter j) = odds_j / (1 + Σ_k odds_k),     P(on the file, among these) = Σ_k odds_k / (1 + Σ_k odds_k).

Two candidates that each look like a match on their own therefore share the probability, and
neither clears the match threshold: the "several candidates close" case goes to review.

The voters blocking left out are not all impossible: a person who gave only an email that is not
on the file could still be any of them. Their total odds are approximated as prior odds x the
number of voters x the Bayes factor of *disagreeing* on each of family name, zip, address, email
and phone the person gave (a voter agreeing on any of those would have been a candidate; blank on
the voter's side weighs 1). That term joins the denominator, so a person known by little stays
"probably on the file, but who knows where" instead of "certainly not on the file".
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from models.linking.encode import ABSENT, I32, NO_ZIP, Encoded
from models.linking.hashing import MISSING
from models.linking.index import VoterIndex
from models.linking.levels import ADDRESS, BIRTH_YEAR, COMPARISONS, EMAIL, FAMILY, GIVEN, PHONE, ZIP5
from models.linking.model import LinkageModel

F64 = npt.NDArray[np.float64]
_MAX_LOG2_ODDS = 900.0  # 2**900 summed over thousands of candidates still fits a float64


def _voter_frequency(index: VoterIndex, comparison: int, voter: I32) -> F64:
    if comparison == GIVEN:
        return index.given_frequency[index.given[voter]]
    if comparison == FAMILY:
        return index.family_frequency[index.family[voter]]
    if comparison == BIRTH_YEAR:
        return index.year_frequency[index.birth_year[voter]]
    if comparison == ZIP5:
        return index.zip_frequency[index.zip5[voter]]
    raise ValueError(f"no term frequencies for {COMPARISONS[comparison].name}")


def match_weights(model: LinkageModel, index: VoterIndex, levels: npt.NDArray[np.int8], voter: I32) -> F64:
    """log2 Bayes factor of each pair (rows of `levels`, voters `voter`), term-frequency adjusted."""
    total = np.zeros(levels.shape[0])
    floor = 1.0 / index.n_voters  # a value held by a single voter
    for k, table in enumerate(model.weight_tables()):
        column = levels[:, k]
        total += table[column]
        if COMPARISONS[k].term_frequency:
            exact = np.flatnonzero(column == 0)
            if exact.size:
                frequency = np.maximum(_voter_frequency(index, k, voter[exact]), floor)
                # Replace the average u of the exact level by this value's frequency.
                total[exact] += math.log2(max(model.u[k][0], 1e-12)) - np.log2(frequency)
    return total


def outside_odds(model: LinkageModel, index: VoterIndex, people: Encoded) -> F64:
    """Per person, the approximate total odds of the voters that are not among their candidates."""
    tables = model.weight_tables()
    fields = (
        (FAMILY, people.family != ABSENT, index.blank_share["family"]),
        (ZIP5, people.zip5 != NO_ZIP, index.blank_share["zip5"]),
        (ADDRESS, people.street != ABSENT, index.blank_share["address"]),
        (EMAIL, people.email != MISSING, index.blank_share["email"]),
        (PHONE, people.phone != MISSING, index.blank_share["phone"]),
    )
    log_factor = np.zeros(len(people))
    for k, present, blank_share in fields:
        disagree = 2.0 ** tables[k][COMPARISONS[k].levels["ELSE"]]
        log_factor[present] += math.log2(blank_share + (1.0 - blank_share) * disagree)
    result: F64 = np.exp2(model.prior_log2_odds() + math.log2(index.n_voters) + log_factor)
    return result


def posteriors(log2_odds: F64, record: I32, n_records: int, outside: F64 | None = None) -> tuple[F64, F64]:
    """(P of each pair's voter, P that each person is one of their candidates or an outside voter)."""
    odds = np.exp2(np.clip(log2_odds, -_MAX_LOG2_ODDS, _MAX_LOG2_ODDS))
    total: F64 = np.bincount(record, weights=odds, minlength=n_records).astype(np.float64)
    if outside is not None:
        total = total + outside
    probability: F64 = odds / (1.0 + total[record])
    on_file: F64 = total / (1.0 + total)
    return probability, on_file
