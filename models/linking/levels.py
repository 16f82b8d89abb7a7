"""The comparisons of a (person, voter) pair and their levels, most similar first.

A pair's comparison vector holds one level per comparison; a comparison that one side leaves
blank takes its NULL level (numbered after the last real one) and weighs nothing, as in Splink.
Levels marked *neutral* weigh nothing either: an address, email or phone shared with a voter whose
given name or birth year clearly differs says "same household", not "same person" (spouses share
an email, a father and his namesake son an address), so it must not count as the near-certain
evidence it is otherwise.
And where the addresses agree the zip comparison is left blank: the address implies it, and the
model's independence assumption would otherwise count that one fact twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Given(IntEnum):
    EXACT = 0
    NICKNAME = 1  # models.linking.nicknames
    TYPO = 2  # Damerau-Levenshtein (optimal string alignment) distance 1: one typo or transposition
    JW_HIGH = 3  # Jaro-Winkler similarity >= 0.92
    JW_MID = 4  # Jaro-Winkler similarity >= 0.80
    INITIAL = 5  # one side is an initial, the other starts with it
    ELSE = 6


class Family(IntEnum):
    EXACT = 0  # also equal once spaces are dropped ("de la cruz" / "delacruz")
    TYPO = 1
    JW_HIGH = 2
    SHARED_PART = 3  # a double surname and one of its parts ("garcia lopez" / "lopez")
    JW_MID = 4
    ELSE = 5


class Year(IntEnum):
    EXACT = 0
    ONE_OFF = 1
    ELSE = 2


class Zip(IntEnum):
    EXACT = 0
    ELSE = 1


class Address(IntEnum):
    EXACT = 0  # house number, street and unit
    SAME_BUILDING = 1  # house number and street; unit differs or one side has none
    SIMILAR_STREET = 2  # house number, street Jaro-Winkler >= 0.90
    HOUSEHOLD = 3  # one of the above, but the given names or birth years conflict (neutral)
    ELSE = 4


class Contact(IntEnum):
    """Email or phone hash."""

    EXACT = 0
    HOUSEHOLD = 1  # same hash, conflicting given names or birth years (neutral)
    ELSE = 2


JW_HIGH = 0.92
JW_MID = 0.80
STREET_SIMILAR = 0.90
GIVEN_CONFLICT = (Given.JW_MID, Given.ELSE)  # names too far apart to be one person's


@dataclass(frozen=True)
class ComparisonSpec:
    name: str
    levels: type[IntEnum]
    neutral: tuple[int, ...] = ()
    term_frequency: bool = False  # EXACT's u is the voter file's frequency of the value

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def null(self) -> int:
        """The level of a pair where either side is blank."""
        return len(self.levels)

    def level_names(self) -> tuple[str, ...]:
        return tuple(level.name.lower() for level in self.levels)


GIVEN, FAMILY, BIRTH_YEAR, ZIP5, ADDRESS, EMAIL, PHONE = range(7)
COMPARISONS: tuple[ComparisonSpec, ...] = (
    ComparisonSpec("given_name", Given, term_frequency=True),
    ComparisonSpec("family_name", Family, term_frequency=True),
    ComparisonSpec("birth_year", Year, term_frequency=True),
    ComparisonSpec("zip5", Zip, term_frequency=True),
    ComparisonSpec("address", Address, neutral=(Address.HOUSEHOLD,)),
    ComparisonSpec("email", Contact, neutral=(Contact.HOUSEHOLD,)),
    ComparisonSpec("phone", Contact, neutral=(Contact.HOUSEHOLD,)),
)
