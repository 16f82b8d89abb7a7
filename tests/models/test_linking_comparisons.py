"""Every comparison level, and the fuzzy thresholds against slow reference implementations."""

from __future__ import annotations

import random

import numpy as np
import pytest

from models.linking import PersonRecord, VoterColumns, VoterIndex, nicknames
from models.linking.compare import Comparer, family_level, given_level
from models.linking.levels import (
    ADDRESS,
    BIRTH_YEAR,
    COMPARISONS,
    EMAIL,
    FAMILY,
    GIVEN,
    JW_HIGH,
    JW_MID,
    PHONE,
    ZIP5,
    Address,
    Contact,
    Family,
    Given,
    Year,
    Zip,
)
from streams.pii import PiiHasher

HASH = PiiHasher(b"test-secret", cache_size=0)


def jaro_winkler_reference(a: str, b: str) -> float:
    """Jaro (1989) with Winkler's prefix bonus (p = 0.1, up to 4 letters, applied above 0.7), by the book.

    Half-transpositions are counted with integer division, as in Winkler's strcmp95 C code (the
    Census Bureau's reference implementation) and in rapidfuzz.
    """
    if a == b:
        return 1.0
    window = max(0, max(len(a), len(b)) // 2 - 1)
    matched_a = [False] * len(a)
    matched_b = [False] * len(b)
    matches = 0
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not matched_b[j] and b[j] == ch:
                matched_a[i] = matched_b[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    a_seq = [c for c, m in zip(a, matched_a, strict=True) if m]
    b_seq = [c for c, m in zip(b, matched_b, strict=True) if m]
    transpositions = sum(x != y for x, y in zip(a_seq, b_seq, strict=True)) // 2
    jaro = (matches / len(a) + matches / len(b) + (matches - transpositions) / matches) / 3
    if jaro <= 0.7:
        return jaro
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


def osa_reference(a: str, b: str) -> int:
    """Damerau-Levenshtein, optimal string alignment variant, by dynamic programming."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _mutations(rng: random.Random, word: str) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(4):
        i = rng.randrange(len(word))
        kind = rng.randrange(4)
        if kind == 0:
            out.append(word[:i] + rng.choice(letters) + word[i + 1 :])
        elif kind == 1 and len(word) > 2:
            out.append(word[:i] + word[i + 1 :])
        elif kind == 2:
            out.append(word[:i] + rng.choice(letters) + word[i:])
        elif i + 1 < len(word):
            out.append(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
    return out


NAMES = (
    "robert", "roberta", "michael", "michelle", "maria", "mariah", "marie", "jon", "john", "johnny", "kevin",
    "kelvin", "smith", "smyth", "schmidt", "garcia", "garza", "lopez", "lozano", "nguyen", "ngo", "jackson",
    "jacobson", "katherine", "kathryn", "catherine", "ann", "anne", "anna", "hannah", "sofia", "sophia",
)  # fmt: skip


def test_given_levels_follow_the_reference_distances() -> None:
    rng = random.Random(5)
    words = [*NAMES, *(m for w in NAMES for m in _mutations(rng, w))]
    checked = 0
    for a in words:
        for b in rng.sample(words, 25):
            level = given_level(a, b)
            if a == b:
                assert level == Given.EXACT
                continue
            if nicknames.equivalent(a, b):
                assert level == Given.NICKNAME
                continue
            if len(a) == 1 or len(b) == 1:
                continue
            checked += 1
            jw = jaro_winkler_reference(a, b)
            if osa_reference(a, b) <= 1:
                assert level == Given.TYPO, (a, b)
            elif jw >= JW_HIGH + 1e-9:
                assert level == Given.JW_HIGH, (a, b, jw)
            elif JW_MID + 1e-9 <= jw < JW_HIGH - 1e-9:
                assert level == Given.JW_MID, (a, b, jw)
            elif jw < JW_MID - 1e-9:
                assert level == Given.ELSE, (a, b, jw)
    assert checked > 1000


def test_given_name_levels_by_example() -> None:
    assert given_level("robert", "robert") == Given.EXACT
    assert given_level("bob", "robert") == Given.NICKNAME
    assert given_level("micheal", "michael") == Given.TYPO  # transposition
    assert given_level("kevni", "kevin") == Given.TYPO
    assert given_level("r", "robert") == Given.INITIAL
    assert given_level("r", "maria") == Given.ELSE
    assert given_level("maria", "robert") == Given.ELSE


def test_family_name_levels_by_example() -> None:
    assert family_level("de la cruz", "delacruz") == Family.EXACT
    assert family_level("smyth", "smith") == Family.TYPO
    assert family_level("garcia lopez", "lopez") == Family.SHARED_PART
    assert family_level("lopez", "garcia lopez") == Family.SHARED_PART
    assert family_level("nguyen", "anderson") == Family.ELSE
    assert osa_reference("jacobson", "jackson") > 1
    expected = Family.JW_HIGH if jaro_winkler_reference("jacobson", "jackson") >= JW_HIGH else Family.JW_MID
    assert family_level("jacobson", "jackson") == expected


@pytest.fixture(scope="module")
def index() -> VoterIndex:
    email = HASH.email("smiths@example.org")
    return VoterIndex.build(
        VoterColumns(
            voter_id=["V1", "V2", "V3"],
            given_name=["Robert", "Mary", "Robert"],
            family_name=["Smith", "Smith", "Smith"],
            birth_year=[1980, 1982, None],
            zip5=["43001", "43001", "43002"],
            address_line1=["12 Elm St Apt 3", "12 Elm St Apt 3", None],
            email_hash=[email, email, None],  # the Smiths share one email on file
            phone_hash=[HASH.phone("614 010 1234"), None, None],
        )
    )


def _levels(index: VoterIndex, voter: int, **fields: object) -> dict[str, int]:
    record = PersonRecord("r", **fields)  # type: ignore[arg-type]
    people = index.encode([record])
    levels = Comparer(index).compare(people, np.array([0], np.int32), np.array([voter], np.int32))[0]
    return {spec.name: int(levels[k]) for k, spec in enumerate(COMPARISONS)}


def test_blank_fields_take_the_null_level(index: VoterIndex) -> None:
    levels = _levels(index, 2, given_name="Robert")  # V3 has no year, address, email or phone
    assert levels["given_name"] == Given.EXACT
    for k in (FAMILY, BIRTH_YEAR, ZIP5, ADDRESS, EMAIL, PHONE):
        assert levels[COMPARISONS[k].name] == COMPARISONS[k].null


@pytest.mark.parametrize(
    ("year", "level"), [(1980, Year.EXACT), (1981, Year.ONE_OFF), (1979, Year.ONE_OFF), (1990, Year.ELSE)]
)
def test_birth_year_levels(index: VoterIndex, year: int, level: int) -> None:
    assert _levels(index, 0, birth_year=year)["birth_year"] == level


def test_zip_levels_and_zip_left_out_when_the_address_agrees(index: VoterIndex) -> None:
    assert _levels(index, 0, zip5="43001-0042")["zip5"] == Zip.EXACT
    assert _levels(index, 0, zip5="43009")["zip5"] == Zip.ELSE
    agreeing = _levels(index, 0, given_name="Bob", zip5="43001", address_line1="12 Elm Street Apt 3")
    assert agreeing["address"] == Address.EXACT
    assert agreeing["zip5"] == COMPARISONS[ZIP5].null


@pytest.mark.parametrize(
    ("line", "given", "level"),
    [
        ("12 ELM STREET APT. 3", "Robert", Address.EXACT),
        ("12 Elm St", "Robert", Address.SAME_BUILDING),
        ("12 Elm St #4", "Robert", Address.SAME_BUILDING),
        ("12 Elmm St Apt 3", "Robert", Address.SIMILAR_STREET),
        ("14 Elm St Apt 3", "Robert", Address.ELSE),
        ("12 Elm St Apt 3", "Jennifer", Address.HOUSEHOLD),  # same home, clearly another person
    ],
)
def test_address_levels(index: VoterIndex, line: str, given: str, level: int) -> None:
    assert _levels(index, 0, given_name=given, address_line1=line)["address"] == level


def test_a_conflicting_birth_year_makes_a_shared_address_or_email_household_evidence(index: VoterIndex) -> None:
    shared = HASH.email("smiths@example.org")
    son = _levels(index, 0, given_name="Robert", birth_year=2004, address_line1="12 Elm St Apt 3", email_hash=shared)
    assert son["address"] == Address.HOUSEHOLD and son["email"] == Contact.HOUSEHOLD
    father = _levels(index, 0, given_name="Robert", birth_year=1981, address_line1="12 Elm St Apt 3", email_hash=shared)
    assert father["address"] == Address.EXACT and father["email"] == Contact.EXACT


def test_contact_levels(index: VoterIndex) -> None:
    shared = HASH.email("Smiths@Example.org ")
    assert _levels(index, 0, given_name="Bob", email_hash=shared)["email"] == Contact.EXACT
    assert _levels(index, 1, given_name="Bob", email_hash=shared)["email"] == Contact.HOUSEHOLD  # Mary's copy
    assert _levels(index, 0, given_name="Bob", email_hash=HASH.email("bob@example.org"))["email"] == Contact.ELSE
    assert _levels(index, 0, phone_hash=HASH.phone("+1 (614) 010-1234"))["phone"] == Contact.EXACT
    assert _levels(index, 0, phone_hash=HASH.phone("6140109999"))["phone"] == Contact.ELSE
    assert _levels(index, 1, phone_hash=HASH.phone("6140101234"))["phone"] == COMPARISONS[PHONE].null


def test_family_level_through_the_comparer_uses_unknown_values_text(index: VoterIndex) -> None:
    # "Smyth" is not in the voter file's vocabulary: compared by its text, and cached for next time.
    comparer = Comparer(index)
    people = index.encode([PersonRecord("a", family_name="Smyth"), PersonRecord("b", family_name="Smyth")])
    levels = comparer.compare(people, np.array([0, 1], np.int32), np.array([0, 0], np.int32))
    assert levels[:, FAMILY].tolist() == [Family.TYPO, Family.TYPO]
    assert levels[:, GIVEN].tolist() == [COMPARISONS[GIVEN].null] * 2
