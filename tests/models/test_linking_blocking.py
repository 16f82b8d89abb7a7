"""The blocking index: its candidates equal a brute-force reading of the key definitions, and it
finds the true voter under each kind of noise."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from models.linking import BlockingConfig, BlockingKey, PersonRecord, VoterColumns, VoterIndex, nicknames, normalize
from models.linking.address import parse
from models.linking.phonetic import soundex
from streams.pii import PiiHasher
from streams.simulation.identities import IdentitySimulator, NoiseMix, VoterFile
from streams.simulation.world import build_world

HASH = PiiHasher(b"blocking-test", cache_size=0)


def voter_columns(file: VoterFile) -> VoterColumns:
    return VoterColumns(
        file.voter_id, file.given_name, file.family_name, file.birth_year, file.zip5, file.address_line1,
        [HASH.email(e) or None for e in file.email], [HASH.phone(p) or None for p in file.phone],
    )  # fmt: skip


@pytest.fixture(scope="module")
def simulator() -> IdentitySimulator:
    return IdentitySimulator(build_world(3, precincts=40, counties=4, regions=2, voters_per_precinct=250))


@pytest.fixture(scope="module")
def index(simulator: IdentitySimulator) -> VoterIndex:
    return VoterIndex.build(voter_columns(simulator.voter_file))


def reference_keys(
    given: str | None, family: str | None, year: int | None, zip5: str | None, line: str | None,
    email: str | None, phone: str | None,
) -> set[tuple[object, ...]]:  # fmt: skip
    """The blocking keys as plain tuples, straight from their definitions (no hashing)."""
    g, f, z = normalize.given_name(given), normalize.family_name(family), normalize.zip5(zip5)
    y = normalize.birth_year(year)
    address = parse(line)
    keys: set[tuple[object, ...]] = set()
    if email:
        keys.add(("email", email))
    if phone:
        keys.add(("phone", phone))
    if f and z:
        keys.add(("family_zip", f, z))
    if g and f and y:
        keys.add(("name_year", nicknames.canonical(g), f, y))
    if g and f and z:
        keys.add(("soundex_zip", soundex(f), g[0], z))
    if g and f and y:
        keys.add(("soundex_year", soundex(f), g[0], y))
    if address is not None and address.number and address.street:
        keys.add(("address", address.number, address.street))
    return keys


def test_candidates_equal_a_brute_force_reading_of_the_keys(simulator: IdentitySimulator, index: VoterIndex) -> None:
    file = simulator.voter_file
    columns = voter_columns(file)
    voter_keys = [
        reference_keys(columns.given_name[i], columns.family_name[i], columns.birth_year[i], columns.zip5[i],
                       columns.address_line1[i], columns.email_hash[i], columns.phone_hash[i])
        for i in range(len(columns))
    ]  # fmt: skip
    by_key: dict[tuple[object, ...], set[int]] = {}
    for row, keys in enumerate(voter_keys):
        for key in keys:
            by_key.setdefault(key, set()).add(row)
    people = simulator.signups(300, seed=11)
    records = [
        PersonRecord(p.record_id, p.given_name, p.family_name, HASH.email(p.email) or None,
                     HASH.phone(p.phone) or None, p.address_line1, p.zip5, p.birth_year)
        for p in people
    ]  # fmt: skip
    pairs = index.candidates(index.encode(records))
    assert pairs.oversize_blocks == 0
    found: dict[int, set[int]] = {}
    for r, v in zip(pairs.record.tolist(), pairs.voter.tolist(), strict=True):
        found.setdefault(r, set()).add(v)
    for i, rec in enumerate(records):
        keys = reference_keys(rec.given_name, rec.family_name, rec.birth_year, rec.zip5, rec.address_line1,
                              rec.email_hash, rec.phone_hash)  # fmt: skip
        expected = set().union(*(by_key.get(k, set()) for k in keys)) if keys else set()
        assert found.get(i, set()) == expected, rec.record_id
    # Sorted by person then voter, no repeats.
    codes = pairs.record.astype(np.int64) * 2**32 + pairs.voter
    assert np.all(np.diff(codes) > 0)


def _typo(text: str) -> str:
    return text[0] + text[2] + text[1] + text[3:] if len(text) > 3 else text + "e"


def _other_household_voter(simulator: IdentitySimulator, voter: int) -> int:
    world = simulator.world
    step = int(world.household_size[world.voter_household[voter]])
    return (voter + step + 7) % world.n_voters


NOISE: dict[str, Callable[[IdentitySimulator, int, PersonRecord], PersonRecord]] = {
    "nickname": lambda s, v, r: replace(r, given_name={"Robert": "Bob", "James": "Jim"}.get(r.given_name or "", "Al")),
    "given_typo": lambda s, v, r: replace(r, given_name=_typo(r.given_name or "")),
    "family_typo": lambda s, v, r: replace(r, family_name=_typo(r.family_name or "")),
    "family_changed": lambda s, v, r: replace(r, family_name="Okonkwo-Vasquez"),
    "family_missing": lambda s, v, r: replace(r, family_name=None),
    "moved": lambda s, v, r: replace(
        r,
        zip5=s.voter_file.zip5[_other_household_voter(s, v)],
        address_line1=s.voter_file.address_line1[_other_household_voter(s, v)],
    ),
    "birth_year_off": lambda s, v, r: replace(r, birth_year=(r.birth_year or 0) + 1),
    "no_birth_year": lambda s, v, r: replace(r, birth_year=None),
    "formatting": lambda s, v, r: replace(
        r,
        given_name=f"  {(r.given_name or '').upper()} ",
        family_name=(r.family_name or "").lower() + " Jr.",
        address_line1=(r.address_line1 or "").upper().replace(" ST", " STREET"),
    ),
}


@pytest.mark.parametrize("noise", sorted(NOISE))
def test_blocking_finds_the_true_voter_under_each_kind_of_noise(
    simulator: IdentitySimulator, index: VoterIndex, noise: str
) -> None:
    """One kind of noise at a time, on people who gave names, zip, birth year and address but no
    email or phone (those keys would find almost anyone): the other keys must still find them."""
    file = simulator.voter_file
    rng = random.Random(noise)
    voters = rng.sample(range(len(file)), 300)
    records = [
        NOISE[noise](simulator, v, PersonRecord(f"p{v}", file.given_name[v], file.family_name[v], None, None,
                                               file.address_line1[v], file.zip5[v], file.birth_year[v]))
        for v in voters
    ]  # fmt: skip
    pairs = index.candidates(index.encode(records))
    found = set(zip(pairs.record.tolist(), pairs.voter.tolist(), strict=True))
    missed = [records[i] for i, v in enumerate(voters) if (i, v) not in found]
    assert not missed, missed[:3]


def test_a_mixed_noise_sample_is_mostly_found(simulator: IdentitySimulator, index: VoterIndex) -> None:
    people = [p for p in simulator.signups(2000, seed=5, mix=NoiseMix()) if p.true_voter_id is not None]
    rows = index.row_of([p.true_voter_id for p in people if p.true_voter_id])
    records = [
        PersonRecord(p.record_id, p.given_name, p.family_name, HASH.email(p.email) or None,
                     HASH.phone(p.phone) or None, p.address_line1, p.zip5, p.birth_year)
        for p in people
    ]  # fmt: skip
    pairs = index.candidates(index.encode(records))
    found = set(zip(pairs.record.tolist(), pairs.voter.tolist(), strict=True))
    hits = sum((i, rows[p.true_voter_id]) in found for i, p in enumerate(people) if p.true_voter_id)
    assert hits / len(people) > 0.9


def test_oversize_blocks_are_skipped_and_counted() -> None:
    n = 50
    columns = VoterColumns(
        [f"V{i}" for i in range(n)], [f"Name{chr(97 + i % 26)}" for i in range(n)], ["Smith"] * n, [1980] * n,
        ["43001"] * n, [None] * n, [None] * n, [None] * n,
    )  # fmt: skip
    small = VoterIndex.build(columns, BlockingConfig(keys=(BlockingKey.FAMILY_ZIP,), max_block=20))
    pairs = small.candidates(small.encode([PersonRecord("r", "Namea", "Smith", zip5="43001")]))
    assert len(pairs) == 0 and pairs.oversize_blocks == 1
    roomy = VoterIndex.build(columns, BlockingConfig(keys=(BlockingKey.FAMILY_ZIP,), max_block=n))
    assert len(roomy.candidates(roomy.encode([PersonRecord("r", "Namea", "Smith", zip5="43001")]))) == n


def test_the_index_stays_compact(index: VoterIndex) -> None:
    """Arrays: under 200 bytes per voter (1M voters → under 200 MB) beside ~1 MB of fixed tables."""
    assert index.nbytes < 200 * index.n_voters + 2**20
