"""People as columns of small integers: what blocking and the vectorised comparisons work on.

Normalisation runs once per *distinct* raw value of a column (a voter file repeats its given
names, family names and streets endlessly), then each row only looks its value up. Names and
streets are numbered by the voter file's vocabularies; a value the file does not contain gets
UNKNOWN, and its text is kept so the fuzzy comparisons can still read it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from models.linking import address, nicknames, normalize
from models.linking.hashing import MISSING, U64, digest_hash, string_hash
from models.linking.phonetic import soundex

I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]

ABSENT = -1  # no value
UNKNOWN = -2  # a value the voter file does not contain (query side only)
NO_ZIP = -1
NO_YEAR = 0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Vocabulary:
    """The distinct normalised strings of one voter-file column, numbered from 0."""

    __slots__ = ("_ids", "strings")

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self.strings: list[str] = []

    def __len__(self) -> int:
        return len(self.strings)

    def add(self, text: str) -> int:
        found = self._ids.get(text)
        if found is None:
            found = self._ids[text] = len(self.strings)
            self.strings.append(text)
        return found

    def get(self, text: str) -> int:
        return self._ids.get(text, UNKNOWN)


def map_distinct(values: Sequence[K], function: Callable[[K], V]) -> list[V]:
    """function(value) for each value, computed once per distinct value."""
    table = {value: function(value) for value in dict.fromkeys(values)}
    return [table[value] for value in values]


@dataclass(frozen=True)
class Encoded:
    """A batch of people (or the voter file) as parallel arrays, one row each."""

    given: I32  # vocabulary id, ABSENT or UNKNOWN
    family: I32
    street: I32
    given_text: list[str | None]  # normalised text (kept for fuzzy comparison of UNKNOWN values)
    family_text: list[str | None]
    street_text: list[str | None]
    birth_year: I16  # NO_YEAR when absent
    zip5: I32  # the zip as a number, NO_ZIP when absent
    house_number: U64  # hash, MISSING when absent
    unit: U64  # hash, MISSING when none
    email: U64  # 64 bits of the keyed digest, MISSING when absent
    phone: U64
    # Blocking material (hashes, MISSING when absent).
    given_key: U64  # nickname-canonical given name
    initial: U64  # the given name's first letter
    family_key: U64
    soundex_key: U64  # of the family name
    street_key: U64

    def __len__(self) -> int:
        return int(self.given.shape[0])


@dataclass(frozen=True)
class Vocabularies:
    given: Vocabulary
    family: Vocabulary
    street: Vocabulary


def _ids(texts: list[str | None], vocabulary: Vocabulary, grow: bool) -> I32:
    lookup = vocabulary.add if grow else vocabulary.get
    table = {t: (lookup(t) if t is not None else ABSENT) for t in dict.fromkeys(texts)}
    return np.fromiter((table[t] for t in texts), dtype=np.int32, count=len(texts))


def _hashes(values: list[str | None], function: Callable[[str | None], int]) -> U64:
    return np.array(map_distinct(values, function), dtype=np.uint64)


def _zip_number(raw: str | None) -> int:
    z = normalize.zip5(raw)
    return int(z) if z is not None else NO_ZIP


def _year(raw: int | None) -> int:
    year = normalize.birth_year(raw)
    return year if year is not None else NO_YEAR


def _canonical_given(text: str | None) -> int:
    return string_hash(nicknames.canonical(text)) if text else MISSING


def _initial(text: str | None) -> int:
    return string_hash(text[0]) if text else MISSING


def _soundex(text: str | None) -> int:
    return string_hash(soundex(text)) if text else MISSING


def encode(
    vocabularies: Vocabularies,
    *,
    given_name: Sequence[str | None],
    family_name: Sequence[str | None],
    birth_year: Sequence[int | None],
    zip5: Sequence[str | None],
    address_line1: Sequence[str | None],
    email_hash: Sequence[str | None],
    phone_hash: Sequence[str | None],
    grow: bool,
) -> Encoded:
    """Normalise and number the columns; `grow` adds new strings to the vocabularies (voter file)."""
    given_text = map_distinct(given_name, normalize.given_name)
    family_text = map_distinct(family_name, normalize.family_name)
    parsed = map_distinct(address_line1, address.parse)
    street_text = [a.street if a is not None and a.street else None for a in parsed]
    number_text = [a.number if a is not None and a.number else None for a in parsed]
    unit_text = [a.unit if a is not None and a.unit else None for a in parsed]
    return Encoded(
        given=_ids(given_text, vocabularies.given, grow),
        family=_ids(family_text, vocabularies.family, grow),
        street=_ids(street_text, vocabularies.street, grow),
        given_text=given_text,
        family_text=family_text,
        street_text=street_text,
        birth_year=np.array(map_distinct(birth_year, _year), dtype=np.int16),
        zip5=np.array(map_distinct(zip5, _zip_number), dtype=np.int32),
        house_number=_hashes(number_text, string_hash),
        unit=_hashes(unit_text, string_hash),
        email=_hashes(list(email_hash), digest_hash),
        phone=_hashes(list(phone_hash), digest_hash),
        given_key=_hashes(given_text, _canonical_given),
        initial=_hashes(given_text, _initial),
        family_key=_hashes(family_text, string_hash),
        soundex_key=_hashes(family_text, _soundex),
        street_key=_hashes(street_text, string_hash),
    )
