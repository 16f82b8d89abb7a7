"""Deterministic rules: minimum field sets that link on their own when exactly one voter meets them.

In order (the first rule that finds exactly one voter decides):

1. email hash, given names not conflicting;
2. phone hash, likewise;
3. given + family name + address (house number and street), birth years not more than one apart
   (a father and son of one name share an address);
4. given + family name + zip5 + birth year, *when these values identify a person in a file this
   size*: the expected number of voters sharing all four by chance (voters x the product of the
   four values' frequencies in the file) is below `max_chance`. Domain practice uses a full birth
   *date* here; with a birth year only, "Maria Garcia, 43215, 1980" is not rare enough in a
   million voters, and linking it blindly was wrong for one signup in five in our simulation.

Names are compared after normalisation, exactly (a nickname is left to the probabilistic model).
A rule met by two voters decides nothing: the pairs go on to scoring, where the two share the
probability and the person goes to review.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from models.linking.encode import I32
from models.linking.index import VoterIndex
from models.linking.levels import ADDRESS, BIRTH_YEAR, EMAIL, FAMILY, GIVEN, PHONE, ZIP5, Address, Contact, Year
from models.linking.records import Method

BOOL = npt.NDArray[np.bool_]
DEFAULT_RULES = (Method.EMAIL, Method.PHONE, Method.NAME_ADDRESS, Method.NAME_ZIP_BIRTH_YEAR)
DEFAULT_MAX_CHANCE = 0.01


def chance_of_sharing(index: VoterIndex, voter: I32) -> npt.NDArray[np.float64]:
    """Expected number of voters who share these voters' name, zip and birth year by chance."""
    result: npt.NDArray[np.float64] = (
        index.n_voters
        * index.given_frequency[index.given[voter]]
        * index.family_frequency[index.family[voter]]
        * index.zip_frequency[index.zip5[voter]]
        * index.year_frequency[index.birth_year[voter]]
    )
    return result


def rule_holds(
    rule: Method, levels: npt.NDArray[np.int8], index: VoterIndex, voter: I32, max_chance: float = DEFAULT_MAX_CHANCE
) -> BOOL:
    """Which pairs meet the rule's field set."""
    if rule is Method.EMAIL:
        return np.asarray(levels[:, EMAIL] == Contact.EXACT, dtype=bool)
    if rule is Method.PHONE:
        return np.asarray(levels[:, PHONE] == Contact.EXACT, dtype=bool)
    names = (levels[:, GIVEN] == 0) & (levels[:, FAMILY] == 0)
    if rule is Method.NAME_ADDRESS:
        years_fit = levels[:, BIRTH_YEAR] != Year.ELSE
        address = np.isin(levels[:, ADDRESS], (Address.EXACT, Address.SAME_BUILDING))
        return np.asarray(names & years_fit & address, dtype=bool)
    if rule is Method.NAME_ZIP_BIRTH_YEAR:
        holds = np.asarray(names & (levels[:, ZIP5] == 0) & (levels[:, BIRTH_YEAR] == 0), dtype=bool)
        where = np.flatnonzero(holds)
        holds[where] = chance_of_sharing(index, voter[where]) < max_chance
        return holds
    raise ValueError(f"{rule} is not a deterministic rule")


def deterministic_links(
    rules: Sequence[Method],
    levels: npt.NDArray[np.int8],
    record: I32,
    voter: I32,
    index: VoterIndex,
    n_records: int,
    max_chance: float = DEFAULT_MAX_CHANCE,
) -> tuple[npt.NDArray[np.int64], list[Method]]:
    """Per person: the index of the pair a rule links (or -1), and the rule (Method.NONE if none)."""
    chosen = np.full(n_records, -1, dtype=np.int64)
    methods = [Method.NONE] * n_records
    for rule in rules:
        holds = np.flatnonzero(rule_holds(rule, levels, index, voter, max_chance))
        if not holds.size:
            continue
        owners = record[holds]
        count = np.bincount(owners, minlength=n_records)
        single = (count[owners] == 1) & (chosen[owners] < 0)
        for pair, owner in zip(holds[single].tolist(), owners[single].tolist(), strict=True):
            chosen[owner] = pair
            methods[owner] = rule
    return chosen, methods
