"""Normal forms of names, zips, years and addresses; the nickname table; Soundex."""

from __future__ import annotations

import itertools

import pytest

from models.linking import nicknames, normalize
from models.linking.address import Address, parse
from models.linking.phonetic import soundex


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("José", "jose"),
        ("  ROBERT ", "robert"),
        ("Dr. Robert", "robert"),
        ("J. Robert", "robert"),  # goes by the middle name
        ("Mary Ann", "mary"),
        ("Zoë", "zoe"),
        ("O'Neil", "oneil"),
        ("Mr", None),
        ("", None),
        (None, None),
        ("123", None),
    ],
)
def test_given_name(raw: str | None, expected: str | None) -> None:
    assert normalize.given_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("O'Brien", "obrien"),
        ("García-López", "garcia lopez"),
        ("Smith Jr.", "smith"),
        ("Smith, III", "smith"),
        ("de la Cruz", "de la cruz"),
        ("NGUYỄN", "nguyen"),
        ("St. John", "st john"),  # the comparison drops spaces: equal to "StJohn"
        ("St.John", "stjohn"),
        ("", None),
    ],
)
def test_family_name(raw: str, expected: str | None) -> None:
    assert normalize.family_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("43001", "43001"), ("43001-1234", "43001"), ("430011234", "43001"), ("2134", "02134"), (2134, "02134"),
     ("abcde", None), ("", None), (None, None), ("00000", None), ("1234567", None)],
)  # fmt: skip
def test_zip5(raw: str | int | None, expected: str | None) -> None:
    assert normalize.zip5(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [(1984, 1984), ("1984", 1984), (1850, None), ("n/a", None), (None, None)])
def test_birth_year(raw: int | str | None, expected: int | None) -> None:
    assert normalize.birth_year(raw) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [("bob", "robert"), ("liz", "elizabeth"), ("beth", "elizabeth"), ("bill", "william"), ("peggy", "margaret"),
     ("jack", "john"), ("sophia", "sofia"), ("paco", "francisco"), ("chuy", "jesus")],
)  # fmt: skip
def test_nicknames_are_equivalent_both_ways(a: str, b: str) -> None:
    assert nicknames.equivalent(a, b)
    assert nicknames.equivalent(b, a)


def test_nickname_equivalence_is_not_transitive_and_not_reflexive() -> None:
    assert nicknames.equivalent("chris", "christopher") and nicknames.equivalent("chris", "christina")
    assert not nicknames.equivalent("christopher", "christina")
    assert not nicknames.equivalent("robert", "robert")  # the same name is the exact level, not this one
    assert not nicknames.equivalent("robert", "william")


def test_nickname_table_is_a_few_hundred_groups_and_symmetric() -> None:
    assert nicknames.group_count() >= 200
    names = sorted(nicknames.names())
    assert len(names) >= 500
    for a, b in itertools.combinations(names[:200], 2):
        assert nicknames.equivalent(a, b) == nicknames.equivalent(b, a)


def test_canonical_form_is_shared_by_a_nickname_and_its_formal_name() -> None:
    for formal, nick in [("robert", "bob"), ("nathan", "nate"), ("william", "bill"), ("margaret", "peggy")]:
        assert nicknames.canonical(nick) == nicknames.canonical(formal) == formal
    assert nicknames.canonical("zebulon") == "zebulon"  # not in the table: itself


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12 North Elm Street, Apt. 4B", Address("12", "n elm st", "4b")),
        ("12 N Elm St #4b", Address("12", "n elm st", "4b")),
        ("12 Elm St 4B", Address("12", "elm st", "4b")),
        ("100 Park Avenue Suite 200", Address("100", "park ave", "200")),
        ("7 Court Street", Address("7", "court st", "")),
        ("55 W Third St Apt #2", Address("55", "w 3rd st", "2")),
        ("9 Lakeview Boulevard", Address("9", "lakeview blvd", "")),
        ("9 LAKEVIEW BLVD.", Address("9", "lakeview blvd", "")),
        ("P.O. Box 77", Address("77", "po box", "")),
        ("917 Front Pl", Address("917", "front pl", "")),  # "front" names a unit only after the street
        ("12 Elm St Rear", Address("12", "elm st", "rear")),
        ("", None),
        ("Apt 4", None),
    ],
)
def test_address_parse(raw: str, expected: Address | None) -> None:
    assert parse(raw) == expected


def test_soundex_matches_the_national_archives_examples() -> None:
    # https://www.archives.gov/research/census/soundex: published codes.
    examples = {"robert": "R163", "rupert": "R163", "rubin": "R150", "ashcraft": "A261", "ashcroft": "A261",
                "tymczak": "T522", "pfister": "P236", "honeyman": "H555"}  # fmt: skip
    for name, code in examples.items():
        assert soundex(name) == code
    assert soundex("") == ""
