"""The voter file in memory: encoded columns, term frequencies and a blocking index.

Blocking (which voters a person is compared with at all) uses several keys; a voter is a
candidate when it shares any one of them with the person. Each kind of key is hashed into one
sorted uint64 array beside the int32 voter rows it points to, so a micro-batch's candidates are
two `searchsorted` calls and a gather per kind, and a 1M-voter file costs about 12 bytes per key.

Keys: email hash; phone hash; (family name, zip5); (nickname-canonical given name, family name,
birth year); (Soundex of family name, given initial, zip5) and (..., birth year), which catch a
mistyped family name; (house number, street), which catches a changed one. A block larger than
`max_block` voters is skipped for that person (it would cost more than it could tell apart) and
counted, so a bad key shows in the metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from models.linking.encode import (
    ABSENT,
    I16,
    I32,
    NO_YEAR,
    NO_ZIP,
    Encoded,
    Vocabularies,
    Vocabulary,
    encode,
)
from models.linking.hashing import MISSING, U64, combine
from models.linking.normalize import MAX_BIRTH_YEAR
from models.linking.records import PersonRecord, VoterColumns

F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]


class BlockingKey(IntEnum):
    EMAIL = 1
    PHONE = 2
    FAMILY_ZIP = 3
    NAME_YEAR = 4
    SOUNDEX_INITIAL_ZIP = 5
    SOUNDEX_INITIAL_YEAR = 6
    ADDRESS = 7


def blocking_keys(kind: BlockingKey, people: Encoded) -> tuple[U64, BOOL]:
    """Each row's key of this kind and whether it has one (every field of the key present)."""
    zip5 = people.zip5.astype(np.int64)
    year = people.birth_year.astype(np.int64)
    has_zip = people.zip5 != NO_ZIP
    has_year = people.birth_year != NO_YEAR
    has_family = people.family_key != MISSING
    if kind is BlockingKey.EMAIL:
        return combine(kind, people.email), people.email != MISSING
    if kind is BlockingKey.PHONE:
        return combine(kind, people.phone), people.phone != MISSING
    if kind is BlockingKey.FAMILY_ZIP:
        return combine(kind, people.family_key, zip5), has_family & has_zip
    if kind is BlockingKey.NAME_YEAR:
        valid = (people.given_key != MISSING) & has_family & has_year
        return combine(kind, people.given_key, people.family_key, year), valid
    has_soundex = (people.soundex_key != MISSING) & (people.initial != MISSING)
    if kind is BlockingKey.SOUNDEX_INITIAL_ZIP:
        return combine(kind, people.soundex_key, people.initial, zip5), has_soundex & has_zip
    if kind is BlockingKey.SOUNDEX_INITIAL_YEAR:
        return combine(kind, people.soundex_key, people.initial, year), has_soundex & has_year
    valid = (people.house_number != MISSING) & (people.street_key != MISSING)
    return combine(kind, people.house_number, people.street_key), valid


@dataclass(frozen=True)
class BlockingConfig:
    keys: tuple[BlockingKey, ...] = tuple(BlockingKey)
    max_block: int = 1000


@dataclass(frozen=True)
class CandidatePairs:
    """(person row, voter row) pairs, unique, sorted by person then voter."""

    record: I32
    voter: I32
    oversize_blocks: int  # blocks skipped for being larger than max_block

    def __len__(self) -> int:
        return int(self.record.shape[0])


def _frequencies(values: npt.NDArray[np.integer], valid: BOOL, size: int) -> F64:
    counts = np.bincount(values[valid].astype(np.int64), minlength=size).astype(np.float64)
    result: F64 = counts / max(1, values.shape[0])
    return result


class VoterIndex:
    """The encoded voter file with its blocking index; build it with `VoterIndex.build`."""

    def __init__(
        self,
        voter_ids: npt.NDArray[np.bytes_],
        people: Encoded,
        vocabularies: Vocabularies,
        config: BlockingConfig,
    ) -> None:
        self.config = config
        self.vocabularies = vocabularies
        self._voter_ids = voter_ids
        # Only what the comparisons read is kept; the blocking material lives on in the keys.
        self.given: I32 = people.given
        self.family: I32 = people.family
        self.street: I32 = people.street
        self.birth_year: I16 = people.birth_year
        self.zip5: I32 = people.zip5
        self.house_number: U64 = people.house_number
        self.unit: U64 = people.unit
        self.email: U64 = people.email
        self.phone: U64 = people.phone
        # Term frequencies (Splink's term-frequency adjustment): the share of voters with a value.
        self.given_frequency = _frequencies(people.given, people.given != ABSENT, len(vocabularies.given))
        self.family_frequency = _frequencies(people.family, people.family != ABSENT, len(vocabularies.family))
        self.year_frequency = _frequencies(people.birth_year, people.birth_year != NO_YEAR, MAX_BIRTH_YEAR + 1)
        self.zip_frequency = _frequencies(people.zip5, people.zip5 != NO_ZIP, 100_000)
        # Shares of voters without each field (the outside-candidates term of scoring reads them).
        self.blank_share = {
            "family": float((people.family == ABSENT).mean()) if len(people) else 1.0,
            "zip5": float((people.zip5 == NO_ZIP).mean()) if len(people) else 1.0,
            "address": float((people.street == ABSENT).mean()) if len(people) else 1.0,
            "email": float((people.email == MISSING).mean()) if len(people) else 1.0,
            "phone": float((people.phone == MISSING).mean()) if len(people) else 1.0,
        }
        self._blocks = self._build_blocks(people)

    @classmethod
    def build(cls, voters: VoterColumns, config: BlockingConfig | None = None) -> VoterIndex:
        vocabularies = Vocabularies(Vocabulary(), Vocabulary(), Vocabulary())
        people = encode(
            vocabularies,
            given_name=voters.given_name,
            family_name=voters.family_name,
            birth_year=voters.birth_year,
            zip5=voters.zip5,
            address_line1=voters.address_line1,
            email_hash=voters.email_hash,
            phone_hash=voters.phone_hash,
            grow=True,
        )
        voter_ids = np.array(voters.voter_id, dtype=np.bytes_)
        return cls(voter_ids, people, vocabularies, config or BlockingConfig())

    def _build_blocks(self, people: Encoded) -> dict[BlockingKey, tuple[U64, I32]]:
        """Per kind, the sorted keys and the voter row of each (one kind at a time keeps the build's peak low)."""
        blocks = {}
        for kind in self.config.keys:
            key, valid = blocking_keys(kind, people)
            where = np.flatnonzero(valid).astype(np.int32)
            key = key[where]
            order = np.argsort(key)
            blocks[kind] = (key[order], where[order])
        return blocks

    @property
    def n_voters(self) -> int:
        return int(self._voter_ids.shape[0])

    @property
    def voter_id_bytes(self) -> npt.NDArray[np.bytes_]:
        """Voter ids by row, as bytes (decode one with `bytes(value).decode()`)."""
        return self._voter_ids

    def voter_id(self, row: int) -> str:
        return bytes(self._voter_ids[row]).decode()

    def voter_ids(self, rows: Iterable[int]) -> list[str]:
        ids = self._voter_ids
        return [bytes(ids[r]).decode() for r in rows]

    def row_of(self, voter_ids: Sequence[str]) -> dict[str, int]:
        """Rows of the given voter ids (those present); a linear scan, for tests and tools."""
        wanted = set(voter_ids)
        return {vid: row for row, vid in enumerate(self.voter_ids(range(self.n_voters))) if vid in wanted}

    @property
    def nbytes(self) -> int:
        arrays = (
            self._voter_ids, self.given, self.family, self.street, self.birth_year, self.zip5, self.house_number,
            self.unit, self.email, self.phone, self.given_frequency, self.family_frequency, self.year_frequency,
            self.zip_frequency,
        )  # fmt: skip
        return sum(int(a.nbytes) for a in arrays) + sum(k.nbytes + r.nbytes for k, r in self._blocks.values())

    def encode(self, records: Sequence[PersonRecord]) -> Encoded:
        """A batch of people in the voter file's numbering (their new strings are not added)."""
        return encode(
            self.vocabularies,
            given_name=[r.given_name for r in records],
            family_name=[r.family_name for r in records],
            birth_year=[r.birth_year for r in records],
            zip5=[r.zip5 for r in records],
            address_line1=[r.address_line1 for r in records],
            email_hash=[r.email_hash for r in records],
            phone_hash=[r.phone_hash for r in records],
            grow=False,
        )

    def candidates(self, people: Encoded, keys: Sequence[BlockingKey] | None = None) -> CandidatePairs:
        """Every voter sharing at least one blocking key (of `keys`, default all) with each person."""
        found_voters: list[I32] = []
        found_records: list[npt.NDArray[np.int64]] = []
        oversize = 0
        for kind in keys if keys is not None else self.config.keys:
            if kind not in self._blocks:
                raise ValueError(f"the index was built without blocking key {kind.name}")
            block_keys, block_rows = self._blocks[kind]
            key, valid = blocking_keys(kind, people)
            owner = np.flatnonzero(valid)
            wanted = key[owner]
            by_key = np.argsort(wanted)  # sorted queries walk the keys in order: ~3x faster lookups
            wanted, owner = wanted[by_key], owner[by_key]
            start = np.searchsorted(block_keys, wanted, side="left")
            size = np.searchsorted(block_keys, wanted, side="right") - start
            too_big = size > self.config.max_block
            oversize += int(too_big.sum())
            size[too_big] = 0
            total = int(size.sum())
            # Positions start[i] .. start[i] + size[i] - 1 for every query key i, flattened.
            offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(size) - size, size)
            found_voters.append(block_rows[np.repeat(start, size) + offsets])
            found_records.append(np.repeat(owner, size))
        if not found_voters:
            empty = np.empty(0, np.int32)
            return CandidatePairs(empty, empty, 0)
        voters = np.concatenate(found_voters).astype(np.int64)
        records = np.concatenate(found_records).astype(np.int64)
        # Sort and drop repeats (np.unique's hashing path is ~25x slower on these codes).
        pairs = np.sort((records << 32) | voters)
        if pairs.size:
            pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
        return CandidatePairs((pairs >> 32).astype(np.int32), (pairs & 0xFFFFFFFF).astype(np.int32), oversize)
