"""Feature spec and hashing: every bucket checked against a key built and hashed by hand."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pytest
from sklearn.utils import murmurhash3_32

from models.scoring.features import (
    DEFAULT_SPEC,
    FeatureSpec,
    FeatureSpecError,
    FieldSpec,
    HashedFeatures,
    RowHasher,
)

SPEC = FeatureSpec(
    version="t1",
    hash_bits=12,
    fields=(
        FieldSpec("party"),
        FieldSpec("age", "banded", (30, 45.5, 65), source="age_years"),
        FieldSpec("reg", "year_band", (2000, 2016), source="registration_date"),
        FieldSpec("voted_g2024", "member", source="history", member="G2024"),
        FieldSpec("channel", default="walk"),
    ),
)


def expected_bucket(key: str, bits: int = 12) -> int:
    """Independent of the code under test: the unsigned 32-bit hash, reduced with a modulo."""
    signed: int = int(murmurhash3_32(key.encode("utf-8"), seed=0))
    return signed % (1 << 32) % (1 << bits)


ROWS: list[tuple[dict[str, Any], list[str]]] = [
    # (row, the five keys its fields must produce)
    (
        {"party": "D", "age_years": 29, "registration_date": dt.date(1999, 12, 31), "history": ["G2024"],
         "channel": "phone"},
        ["party=D", "age=<30", "reg=<2000", "voted_g2024=1", "channel=phone"],
    ),
    (
        {"party": None, "age_years": 30, "registration_date": "2000-01-01", "history": "P2024;G2024", "channel": None},
        ["party=", "age=[30,45.5)", "reg=[2000,2016)", "voted_g2024=1", "channel="],
    ),
    (
        {"party": float("nan"), "age_years": 45.5, "registration_date": np.datetime64("2016-02-03"),
         "history": "P2024", "channel": "sms"},
        ["party=", "age=[45.5,65)", "reg=>=2016", "voted_g2024=0", "channel=sms"],
    ),
    (
        {"party": True, "age_years": "70", "registration_date": None, "history": [], "channel": "walk"},
        ["party=1", "age=>=65", "reg=", "voted_g2024=0", "channel=walk"],
    ),
    (
        {"party": 3.0, "age_years": None, "registration_date": "not a date", "history": None, "channel": "walk"},
        ["party=3", "age=", "reg=", "voted_g2024=", "channel=walk"],
    ),
    (
        {"party": "R", "age_years": "n/a", "registration_date": dt.datetime(2030, 5, 1, 12), "history": ("G2024",),
         "channel": "walk"},
        ["party=R", "age=", "reg=>=2016", "voted_g2024=1", "channel=walk"],
    ),
    (
        {"party": 2.5, "age_years": float("inf"), "registration_date": "1990-07-04", "history": {"G2022"},
         "channel": "walk"},
        ["party=2.5", "age=>=65", "reg=<2000", "voted_g2024=0", "channel=walk"],
    ),
]  # fmt: skip


def expected_indices(keys_per_row: list[list[str]]) -> np.ndarray:
    return np.array([[expected_bucket(k) for k in keys] for keys in keys_per_row], dtype=np.int32)


def test_records_hash_to_the_buckets_of_their_keys() -> None:
    hashed = RowHasher(SPEC).transform([row for row, _ in ROWS])
    np.testing.assert_array_equal(hashed.indices, expected_indices([keys for _, keys in ROWS]))
    assert hashed.n_features == 4096


def test_columns_agree_with_records_and_with_numpy_inputs() -> None:
    records = [row for row, _ in ROWS]
    columns = {name: [r[name] for r in records] for name in records[0]}
    hasher = RowHasher(SPEC)
    by_records = hasher.transform(records).indices
    np.testing.assert_array_equal(hasher.transform(columns).indices, by_records)
    # numpy columns: object arrays, numeric arrays (NaN missing), datetime64 arrays (NaT missing)
    numeric: dict[str, Any] = {
        "party": np.array(["D", "R", "U"], dtype=object),
        "age_years": np.array([29.0, np.nan, 65.0]),
        "registration_date": np.array(["1999-12-31", "NaT", "2016-01-01"], dtype="datetime64[D]"),
        "history": np.array([["G2024"], [], None], dtype=object),
        "channel": np.array(["walk", "walk", "walk"]),
    }
    expected = [
        ["party=D", "age=<30", "reg=<2000", "voted_g2024=1", "channel=walk"],
        ["party=R", "age=", "reg=", "voted_g2024=0", "channel=walk"],
        ["party=U", "age=>=65", "reg=>=2016", "voted_g2024=", "channel=walk"],
    ]
    np.testing.assert_array_equal(hasher.transform(numeric).indices, expected_indices(expected))


def test_boolean_and_integer_arrays_hash_like_their_python_values() -> None:
    spec = FeatureSpec("b", 12, (FieldSpec("flag"), FieldSpec("n")))
    hashed = RowHasher(spec).transform({"flag": np.array([True, False]), "n": np.array([7, -2], dtype=np.int16)})
    np.testing.assert_array_equal(hashed.indices, expected_indices([["flag=1", "n=7"], ["flag=0", "n=-2"]]))


def test_defaults_fill_absent_columns_and_absent_required_columns_fail() -> None:
    hasher = RowHasher(SPEC)
    columns: dict[str, Any] = {"party": ["D"], "age_years": [50], "registration_date": [None], "history": [["G2024"]]}
    hashed = hasher.transform(columns)
    assert hashed.indices[0, 4] == expected_bucket("channel=walk")
    records = hasher.transform([{"party": "D"}])  # a key missing from a record is a missing value
    assert records.indices[0, 1] == expected_bucket("age=")
    assert records.indices[0, 4] == expected_bucket("channel=walk")
    with pytest.raises(KeyError, match="age_years"):
        hasher.transform({"party": ["D"]})


def test_value_caches_never_change_results() -> None:
    rng = np.random.default_rng(3)
    values = [f"P{i:04d}" for i in rng.integers(0, 500, 3000)]
    spec = FeatureSpec("c", 16, (FieldSpec("precinct_id"),))
    small_cache = RowHasher(spec, cache_limit=10)
    expected = np.array([[(murmurhash3_32(f"precinct_id={v}", seed=0) % 2**32) % 2**16] for v in values])
    for _ in range(3):  # cold, then warm, then after the small cache was cleared
        np.testing.assert_array_equal(small_cache.transform({"precinct_id": values}).indices, expected)
        np.testing.assert_array_equal(RowHasher(spec).transform({"precinct_id": values}).indices, expected)


def test_unhashable_categorical_values_are_hashed_by_their_text() -> None:
    spec = FeatureSpec("u", 12, (FieldSpec("x"),))
    hashed = RowHasher(spec).transform([{"x": "a"}, {"x": ["a", "b"]}])
    np.testing.assert_array_equal(hashed.indices[:, 0], [expected_bucket("x=a"), expected_bucket("x=['a', 'b']")])


def test_csr_matches_the_indices_and_leaves_them_intact() -> None:
    indices = np.array([[1, 5, 5], [0, 2, 3]], dtype=np.int32)  # row 0 has a collision
    features = HashedFeatures(indices.copy(), 8)
    dense = features.to_csr().toarray()
    expected = np.zeros((2, 8))
    for i, row in enumerate(indices):
        for j in row:
            expected[i, j] += 1.0
    np.testing.assert_array_equal(dense, expected)
    np.testing.assert_array_equal(features.indices, indices)
    np.testing.assert_array_equal(features.take(np.array([1])).indices, indices[1:])


def test_spec_json_round_trip_equality_and_fingerprint() -> None:
    text = DEFAULT_SPEC.to_json()
    again = FeatureSpec.from_json(text)
    assert again == DEFAULT_SPEC
    assert again.fingerprint == DEFAULT_SPEC.fingerprint
    assert json.loads(text) == json.loads(json.dumps(DEFAULT_SPEC.to_json_dict()))
    assert DEFAULT_SPEC.differences(again) == []
    assert "registration_date" in DEFAULT_SPEC.columns and "vote_history" in DEFAULT_SPEC.columns


def test_differences_name_what_changed() -> None:
    other = FeatureSpec(
        version="t2",
        hash_bits=14,
        fields=(FieldSpec("party"), FieldSpec("age", "banded", (30, 50, 65), source="age_years"), FieldSpec("zip5")),
    )
    text = "\n".join(SPEC.differences(other))
    assert "12 bits" in text and "14 bits" in text
    assert "'t1'" in text and "'t2'" in text
    assert "field age differs" in text
    assert "['reg', 'voted_g2024', 'channel']" in text and "['zip5']" in text
    assert other != SPEC and SPEC.fingerprint != other.fingerprint
    reordered = FeatureSpec("t1", 12, tuple(reversed(SPEC.fields)))
    assert SPEC.differences(reordered) == ["same fields in a different order"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: FieldSpec("a=b"),
        lambda: FieldSpec(""),
        lambda: FieldSpec("x", "banded", ()),
        lambda: FieldSpec("x", "banded", (2, 1)),
        lambda: FieldSpec("x", "banded", (1, math.inf)),
        lambda: FieldSpec("x", edges=(1,)),
        lambda: FieldSpec("x", "member"),
        lambda: FieldSpec("x", member="G2024"),
        lambda: FieldSpec("x", "cubic"),  # type: ignore[arg-type]
        lambda: FeatureSpec("v", 7, (FieldSpec("x"),)),
        lambda: FeatureSpec("v", 23, (FieldSpec("x"),)),
        lambda: FeatureSpec("v", 12, ()),
        lambda: FeatureSpec("v", 12, (FieldSpec("x"), FieldSpec("x"))),
        lambda: FeatureSpec("", 12, (FieldSpec("x"),)),
        lambda: FeatureSpec("v", 12, (FieldSpec("x"),), hash="md5"),
    ],
)
def test_invalid_specs_are_refused(make: object) -> None:
    assert callable(make)
    with pytest.raises(FeatureSpecError):
        make()


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "not json",
        '{"version": "v", "hash_bits": 12, "fields": [{"name": "x"}], "extra": 1}',
        '{"version": "v", "hash_bits": 12, "fields": [{"name": "x", "kind": "banded", "edges": ["a"]}]}',
        '{"version": "v", "hash_bits": "12", "fields": [{"name": "x"}]}',
        '{"version": "v", "hash_bits": 12, "fields": [{"name": "x", "colour": "red"}]}',
    ],
)
def test_malformed_spec_json_is_refused(text: str) -> None:
    with pytest.raises(FeatureSpecError):
        FeatureSpec.from_json(text)


def test_a_dataframe_hashes_like_its_columns() -> None:
    pandas = pytest.importorskip("pandas")
    records = [row for row, _ in ROWS[:3]]
    frame = pandas.DataFrame(records)
    hasher = RowHasher(SPEC)
    np.testing.assert_array_equal(hasher.transform(frame).indices, hasher.transform(records).indices)


def test_member_fields_agree_across_list_forms_and_warm_caches() -> None:
    spec = FeatureSpec("m", 12, tuple(FieldSpec(f"v{e}", "member", source="h", member=e) for e in ("G1", "P1")))
    as_text = ["G1;P1", "", None, "P1", "G1", "G1;P1"] * 50
    as_lists = [None if t is None else (t.split(";") if t else []) for t in as_text]
    as_arrays = np.empty(len(as_lists), dtype=object)
    as_arrays[:] = [None if v is None else np.array(v, dtype=str) for v in as_lists]
    mixed = [v if i % 2 else t for i, (t, v) in enumerate(zip(as_text, as_lists, strict=True))]

    def state(value: str | None, member: str) -> str:
        return "" if value is None else "1" if member in value.split(";") else "0"

    expected = expected_indices([[f"vG1={state(t, 'G1')}", f"vP1={state(t, 'P1')}"] for t in as_text])
    hasher = RowHasher(spec, cache_limit=3)
    for _ in range(2):
        for form in (as_text, as_lists, as_arrays, mixed):
            np.testing.assert_array_equal(hasher.transform({"h": form}).indices, expected)
            np.testing.assert_array_equal(hasher.transform([{"h": v} for v in form]).indices, expected)
