"""Simulated identities (streams.simulation.identities): addresses, voter-file contacts, noisy people."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest

from models.linking import normalize
from models.linking.address import parse
from streams.simulation.identities import (
    EMAIL_LIST_MIX,
    IdentitySimulator,
    NoiseMix,
    VoterFileCoverage,
    household_addresses,
    voter_address,
    voter_phone,
)
from streams.simulation.names import FAMILY_NAMES, GIVEN_NAMES
from streams.simulation.world import World, build_world


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(21, precincts=40, counties=4, regions=2, voters_per_precinct=250)


@pytest.fixture(scope="module")
def simulator(world: World) -> IdentitySimulator:
    return IdentitySimulator(world)


def test_household_members_share_an_address_and_households_in_a_zip_do_not(world: World) -> None:
    addresses = household_addresses(world)
    zips = [p.zip5 for p in world.precincts]
    seen: dict[tuple[str, str], int] = {}
    for household in range(world.n_households):
        key = (zips[int(world.household_precinct[household])], addresses.line(household))
        assert seen.setdefault(key, household) == household, f"households {seen[key]} and {household} share {key}"
    for voter in range(0, world.n_voters, 97):
        first = int(world.household_first_voter[world.voter_household[voter]])
        assert voter_address(world, voter, addresses) == voter_address(world, first, addresses)
    again = household_addresses(world)  # a function of the world alone
    assert [again.line(h) for h in range(world.n_households)] == [addresses.line(h) for h in range(world.n_households)]


def test_apartments_in_urban_precincts(world: World) -> None:
    addresses = household_addresses(world)
    urban = {i for i, p in enumerate(world.precincts) if p.urbanicity > 0.6}
    units = [int(addresses.unit[h]) for h in range(world.n_households) if int(world.household_precinct[h]) in urban]
    rural = [int(addresses.unit[h]) for h in range(world.n_households) if int(world.household_precinct[h]) not in urban]
    assert not any(rural)
    if units:
        assert min(units) >= 1


def test_voter_phones_are_unique_and_never_real_lines() -> None:
    phones = [voter_phone(v) for v in range(200_000)]
    assert len(set(phones)) == len(phones)
    for phone in phones[::997]:
        match = re.fullmatch(r"\+1(\d{3})(\d{3})(\d{4})", phone)
        assert match is not None
        # NANP central-office codes start with 2-9: an exchange starting with 0 is never assigned.
        assert match.group(2)[0] == "0"


def test_voter_file_coverage_shares(world: World) -> None:
    coverage = VoterFileCoverage(email=0.5, phone=0.3, shared_household_email=0.0)
    sim = IdentitySimulator(world, coverage)
    n = len(sim.voter_file)
    for share, values in ((0.5, sim.voter_file.email), (0.3, sim.voter_file.phone)):
        observed = sum(v is not None for v in values) / n
        assert abs(observed - share) < 4 * math.sqrt(share * (1 - share) / n)
    assert len({e for e in sim.voter_file.email if e}) == sum(e is not None for e in sim.voter_file.email)


def test_people_are_reproducible_and_seeded(simulator: IdentitySimulator) -> None:
    assert simulator.signups(200, seed=1) == simulator.signups(200, seed=1)
    assert simulator.signups(200, seed=1) != simulator.signups(200, seed=2)
    assert simulator.signups(50, seed=1) == simulator.signups(200, seed=1)[:50]


def test_truth_and_noise_tags_agree_with_the_voter_file(simulator: IdentitySimulator) -> None:
    file = simulator.voter_file
    row = {vid: i for i, vid in enumerate(file.voter_id)}
    people = simulator.signups(4000, seed=3)
    on_file = [p for p in people if p.true_voter_id is not None]
    share = len(on_file) / len(people)
    mix = NoiseMix()
    assert abs(share - mix.on_file) < 4 * math.sqrt(mix.on_file * (1 - mix.on_file) / len(people))
    tags: Counter[str] = Counter()
    for p in people:
        tags.update(p.noise)
        assert p.email or p.phone  # the contract requires one of them
        if p.true_voter_id is None:
            assert "off_file" in p.noise
            continue
        v = row[p.true_voter_id]
        if "moved" not in p.noise and p.zip5 is not None:
            assert normalize.zip5(p.zip5) == file.zip5[v]
        if "moved" not in p.noise and p.address_line1 is not None:
            assert parse(p.address_line1) == parse(file.address_line1[v])
        if not {"nickname", "given_typo"} & set(p.noise):
            assert normalize.given_name(p.given_name) == normalize.given_name(file.given_name[v])
        if p.birth_year is not None and "birth_year_off" not in p.noise:
            assert p.birth_year == file.birth_year[v]
        if "birth_year_off" in p.noise:
            assert p.birth_year is not None and abs(p.birth_year - file.birth_year[v]) == 1
        if "family_missing" in p.noise:
            assert p.family_name is None
    for tag in ("nickname", "given_typo", "family_typo", "family_changed", "moved", "household_email", "new_email",
                "off_file_household", "birth_year_off", "no_birth_year"):  # fmt: skip
        assert tags[tag] > 0, tag


def test_email_list_people_always_have_an_email(simulator: IdentitySimulator) -> None:
    people = simulator.email_people(500, seed=5)
    assert all(p.email for p in people)
    assert all(p.record_id.startswith("E") for p in people)
    assert EMAIL_LIST_MIX.email_given == 1.0


def test_voter_file_names_are_the_worlds_and_tell_people_apart(world: World) -> None:
    file = IdentitySimulator(world).voter_file
    for voter in range(0, world.n_voters, 7):
        assert file.given_name[voter] == GIVEN_NAMES[int(world.given_name[voter])]
        assert file.family_name[voter] == FAMILY_NAMES[int(world.family_name[voter])]
    # Each member carries the household's family name four times in five, so two members share it
    # with probability 0.64 (a little more: own draws sometimes land on the same name).
    same = total = 0
    for household in range(world.n_households):
        first = int(world.household_first_voter[household])
        for voter in range(first + 1, first + int(world.household_size[household])):
            total += 1
            same += file.family_name[voter] == file.family_name[first]
    assert 0.6 < same / total < 0.7
    # Realistic frequencies make a full name with a zip nearly unique (with 32 x 32 names, three
    # voters of a 3,000-voter zip shared each): counted here with a plain Counter.
    keys = Counter(zip(file.given_name, file.family_name, file.zip5, strict=True))
    unique = sum(1 for key in zip(file.given_name, file.family_name, file.zip5, strict=True) if keys[key] == 1)
    assert unique / len(file) > 0.9


def test_off_file_people_draw_names_from_the_worlds_pools(simulator: IdentitySimulator) -> None:
    off_file = [p for p in simulator.signups(3000, seed=11) if p.true_voter_id is None]
    given = {normalize.given_name(n) for n in GIVEN_NAMES}
    family = {normalize.family_name(n) for n in FAMILY_NAMES}
    assert all(normalize.given_name(p.given_name) in given for p in off_file)
    assert all(p.family_name is None or normalize.family_name(p.family_name) in family for p in off_file)
    assert len({p.family_name for p in off_file}) > len(off_file) / 3  # a heavy tail, not a few names


def test_noise_mix_rejects_shares_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="moved"):
        NoiseMix(moved=1.5)
