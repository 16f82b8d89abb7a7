"""The matcher: each deterministic rule, ambiguity, rejections, the posterior against a slow
reference, the model's JSON form, and an end-to-end run on a small simulated campaign."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from models.linking import (
    LinkageModel,
    MatchConfig,
    Matcher,
    Method,
    PersonRecord,
    Status,
    TrainingConfig,
    VoterColumns,
    VoterIndex,
    normalize,
    train,
)
from models.linking.levels import BIRTH_YEAR, COMPARISONS, FAMILY, GIVEN, ZIP5
from models.linking.training import DEFAULT_M
from streams.pii import PiiHasher
from streams.simulation.identities import IdentitySimulator
from streams.simulation.world import build_world

HASH = PiiHasher(b"matcher-test", cache_size=0)
HAND_U = (
    (0.03, 0.002, 0.002, 0.001, 0.01, 0.002, 0.953),
    (0.01, 0.002, 0.001, 0.001, 0.01, 0.976),
    (0.02, 0.04, 0.94),
    (0.05, 0.95),
    (1e-5, 1e-6, 1e-6, 1e-5, 0.99998),
    (1e-6, 1e-6, 0.999998),
    (1e-6, 1e-6, 0.999998),
)


def hand_model(n_voters: int, match_rate: float = 0.5) -> LinkageModel:
    return LinkageModel(DEFAULT_M, HAND_U, match_rate, n_voters)


Row = tuple[str, str, str, int | None, str, str | None, str | None, str | None]


def columns(rows: Sequence[Row]) -> VoterColumns:
    """rows of (voter_id, given, family, birth_year, zip5, address, email, phone); contacts in the clear."""
    return VoterColumns(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows],
        [r[5] for r in rows], [HASH.email(r[6]) or None for r in rows], [HASH.phone(r[7]) or None for r in rows],
    )  # fmt: skip


# A small file: the Smiths share a house and an email; two unrelated Garcias are twins on paper.
_NAMED: list[Row] = [
    ("V1", "Robert", "Smith", 1960, "43001", "12 Elm St", "smiths@example.org", "6140101111"),
    ("V2", "Mary", "Smith", 1962, "43001", "12 Elm St", "smiths@example.org", None),
    ("V3", "Robert", "Smith", 1990, "43002", "7 Oak Ave", None, None),
    ("V4", "Ana", "Garcia", 1984, "43003", "1 Pine Rd", None, None),
    ("V5", "Ana", "Garcia", 1984, "43003", "99 Birch Ln", None, None),
    ("V6", "Kevin", "Nguyen", 1975, "43004", "5 Main St Apt 2", "kevin@example.org", "6140102222"),
]
_FILLER: list[Row] = [
    (f"X{i}", f"Given{i % 40}", f"Family{i % 37}", 1940 + i % 60, f"430{10 + i % 20}", f"{i} Side St", None, None)
    for i in range(400)
]
FILE = [*_NAMED, *_FILLER]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    index = VoterIndex.build(columns(FILE))
    return Matcher(index, hand_model(index.n_voters))


def link_one(matcher: Matcher, **fields: object) -> tuple[Status, str | None, Method]:
    result = matcher.link([PersonRecord("r1", **fields)])[0]  # type: ignore[arg-type]
    return result.status, result.voter_id, result.method


def test_email_rule_links_through_a_nickname(matcher: Matcher) -> None:
    status, voter, method = link_one(matcher, given_name="Bobby", family_name="Smith",
                                     email_hash=HASH.email("Smiths@example.org"))  # fmt: skip
    assert (status, voter, method) == (Status.MATCHED, "V1", Method.EMAIL)


def test_a_shared_email_does_not_link_another_household_member(matcher: Matcher) -> None:
    # Jennifer signs up with the household email: neither Robert nor Mary is her.
    _, voter, method = link_one(matcher, given_name="Jennifer", family_name="Smith", zip5="43001",
                                email_hash=HASH.email("smiths@example.org"))  # fmt: skip
    assert method is not Method.EMAIL
    assert voter is None
    # Mary with the same email is Mary.
    assert link_one(matcher, given_name="Mary", email_hash=HASH.email("smiths@example.org"))[1:] == ("V2", Method.EMAIL)


def test_phone_rule(matcher: Matcher) -> None:
    result = link_one(matcher, given_name="Kev", phone_hash=HASH.phone("+1 614-010-2222"))
    assert result == (Status.MATCHED, "V6", Method.PHONE)


def test_name_address_rule_and_its_birth_year_guard(matcher: Matcher) -> None:
    fields = {"given_name": "ROBERT", "family_name": "smith", "address_line1": "12 Elm Street"}
    assert link_one(matcher, **fields)[1:] == ("V1", Method.NAME_ADDRESS)
    assert link_one(matcher, **fields, birth_year=1961)[1:] == ("V1", Method.NAME_ADDRESS)
    # Robert Smith Jr., born 1988 at the same address, is not his father.
    _, voter, method = link_one(matcher, **fields, birth_year=1988)
    assert method is not Method.NAME_ADDRESS and voter != "V1"


def test_name_zip_birth_year_rule_only_where_those_values_are_rare() -> None:
    common: list[Row] = [(f"C{i}", "John", "Smith", 1980 + i % 5, "43001", None, None, None) for i in range(500)]
    rare: list[Row] = [
        ("R1", "Xiomara", "Quist", 1980, "43001", None, None, None),
        ("R2", "John", "Smith", 1979, "43001", None, None, None),
    ]
    index = VoterIndex.build(columns(common + rare))
    matcher = Matcher(index, hand_model(index.n_voters))
    assert link_one(matcher, given_name="Xiomara", family_name="Quist", zip5="43001", birth_year=1980)[1:] == (
        "R1", Method.NAME_ZIP_BIRTH_YEAR,
    )  # fmt: skip
    # John Smith of 43001 born 1979 is unique here too, but half this file is a John Smith: by the
    # file's own frequencies ~500 x 0.5 x 0.5 x 1 x (1/502) ≈ 0.25 voters would share it by chance.
    _, _, method = link_one(matcher, given_name="John", family_name="Smith", zip5="43001", birth_year=1979)
    assert method is not Method.NAME_ZIP_BIRTH_YEAR


def test_twins_on_paper_go_to_review(matcher: Matcher) -> None:
    result = matcher.link([PersonRecord("r", "Ana", "Garcia", zip5="43003", birth_year=1984)])[0]
    assert result.status is Status.AMBIGUOUS and result.voter_id is None
    top = {c.voter_id: c.probability for c in result.candidates[:2]}
    assert set(top) == {"V4", "V5"}
    assert top["V4"] == pytest.approx(top["V5"])
    assert sum(c.probability for c in result.candidates) <= 1.0
    # An address tells them apart.
    assert link_one(matcher, given_name="Ana", family_name="Garcia", zip5="43003", birth_year=1984,
                    address_line1="99 Birch Lane")[1] == "V5"  # fmt: skip


def test_nobody_like_them_is_unmatched(matcher: Matcher) -> None:
    result = matcher.link([PersonRecord("r", "Zebulon", "Quartermaine", zip5="99999")])[0]
    assert result.status is Status.UNMATCHED and result.voter_id is None and result.method is Method.NONE
    assert result.candidates == () and result.match_weight is None


def test_a_rejected_link_is_not_proposed_again(matcher: Matcher) -> None:
    record = PersonRecord("r7", "Kevin", "Nguyen", phone_hash=HASH.phone("6140102222"))
    assert matcher.link([record])[0].voter_id == "V6"
    again = matcher.link([record], rejected={"r7": {"V6"}})[0]
    assert again.voter_id is None and all(c.voter_id != "V6" for c in again.candidates)


def test_empty_batch() -> None:
    index = VoterIndex.build(columns(FILE[:3]))
    assert Matcher(index, hand_model(3)).link([]) == []


def _reference_probabilities(
    file: Sequence[Row],
    model: LinkageModel,
    levels: np.ndarray,
    voter_rows: list[int],
    outside: float,
) -> list[float]:
    """Posterior of each candidate of one person, from m, u and frequencies counted here in Python."""
    n = len(file)
    values: dict[int, Callable[[Row], object]] = {
        GIVEN: lambda r: normalize.given_name(r[1]),
        FAMILY: lambda r: normalize.family_name(r[2]),
        BIRTH_YEAR: lambda r: r[3],
        ZIP5: lambda r: r[4],
    }
    counts = {k: Counter(value(r) for r in file) for k, value in values.items()}
    prior = model.match_rate / n
    odds = []
    for pair_levels, row in zip(levels, voter_rows, strict=True):
        weight = 0.0
        for k, spec in enumerate(COMPARISONS):
            level = int(pair_levels[k])
            if level == spec.null or level in spec.neutral:
                continue
            u = model.u[k][level]
            if level == 0 and spec.term_frequency:
                u = max(counts[k][values[k](file[row])] / n, 1 / n)
            weight += math.log2(model.m[k][level] / u)
        odds.append(prior / (1 - prior) * 2**weight)
    return [o / (1 + sum(odds) + outside) for o in odds]


def test_posteriors_match_a_slow_reference(matcher: Matcher) -> None:
    records = [
        PersonRecord("a", "Ana", "Garcia", zip5="43003", birth_year=1985),
        PersonRecord("b", "Rob", "Smyth", zip5="43001", birth_year=1960, address_line1="12 Elm St"),
        PersonRecord("c", "Given3", "Family3", zip5="43013", birth_year=1943),
    ]
    scored = matcher.score(records)
    assert len(scored.record) > 0
    for i in range(len(records)):
        mine = np.flatnonzero(scored.record == i)
        rows = scored.voter[mine].tolist()
        people = matcher.index.encode([records[i]])
        from models.linking.scoring import outside_odds

        outside = float(outside_odds(matcher.model, matcher.index, people)[0])
        expected = _reference_probabilities(FILE, matcher.model, scored.levels[mine], rows, outside)
        np.testing.assert_allclose(scored.probability[mine], expected, rtol=1e-9, atol=1e-15)


def test_model_json_round_trip_and_validation() -> None:
    model = hand_model(1000, match_rate=0.37)
    assert LinkageModel.from_json(model.to_json()) == model
    data = model.to_dict()
    data["comparisons"][0]["levels"][1] = "pet_name"
    with pytest.raises(ValueError, match="levels differ"):
        LinkageModel.from_dict(data)
    with pytest.raises(ValueError):
        LinkageModel(DEFAULT_M, HAND_U, 1.5, 10)
    with pytest.raises(ValueError):
        LinkageModel(DEFAULT_M[:3], HAND_U, 0.5, 10)


def test_end_to_end_on_a_small_simulated_campaign() -> None:
    simulator = IdentitySimulator(build_world(9, precincts=30, counties=3, regions=1, voters_per_precinct=300))
    file = simulator.voter_file
    index = VoterIndex.build(
        VoterColumns(file.voter_id, file.given_name, file.family_name, file.birth_year, file.zip5, file.address_line1,
                     [HASH.email(e) or None for e in file.email], [HASH.phone(p) or None for p in file.phone])
    )  # fmt: skip
    people = simulator.signups(3000, seed=4)
    records = [
        PersonRecord(p.record_id, p.given_name, p.family_name, HASH.email(p.email) or None,
                     HASH.phone(p.phone) or None, p.address_line1, p.zip5, p.birth_year)
        for p in people
    ]  # fmt: skip
    report = train(index, records, TrainingConfig(u_pairs=200_000, address_u_pairs=1_000_000))
    true_rate = sum(p.true_voter_id is not None for p in people) / len(people)
    assert 0.6 * true_rate < report.model.match_rate < 1.1 * true_rate
    results = Matcher(index, report.model, MatchConfig()).link(records)
    matched = [(p, r) for p, r in zip(people, results, strict=True) if r.status is Status.MATCHED]
    correct = sum(r.voter_id == p.true_voter_id for p, r in matched)
    on_file = sum(p.true_voter_id is not None for p in people)
    assert correct / len(matched) > 0.98
    assert correct / on_file > 0.6
    for r in results:
        assert 0.0 <= r.probability <= 1.0
        assert (r.voter_id is not None) == (r.status is Status.MATCHED)
        assert (r.method is Method.NONE) == (r.status is Status.UNMATCHED)
