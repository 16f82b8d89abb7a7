"""The SQL form of an artifact scores a voters-shaped ClickHouse table exactly as numpy does.

This is the one scoring test that needs the embedded warehouse (the conftest's chDB `client`).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from clickhouse_connect.driver.client import Client

from models.scoring.artifact import ModelArtifact
from models.scoring.features import DEFAULT_SPEC, FieldSpec, RowHasher, bucket
from models.scoring.sql import score_sql

N = 3000


def voter_rows(rng: np.random.Generator) -> dict[str, list[object]]:
    birth = rng.integers(1925, 2008, N)
    return {
        "voter_id": [f"V{i:08d}" for i in range(N)],
        "party": rng.choice(["D", "R", "U", "L", "G", ""], N).tolist(),
        "gender": rng.choice(["F", "M", "X", "U"], N).tolist(),
        # birth years exactly on edges, and some unknown
        "birth_year": [None if i % 17 == 0 else int(b) if i % 5 else 1966 for i, b in enumerate(birth)],
        "registration_date": [
            None if i % 13 == 0 else dt.date(int(y), 1 + i % 12, 1) for i, y in enumerate(rng.integers(1990, 2027, N))
        ],
        "vote_history": [
            [e for e in ("G2024", "P2024", "G2022", "P2022", "G2020") if rng.random() < 0.5] for _ in range(N)
        ],
        "precinct_id": [f"P{int(i):04d}" for i in rng.integers(1, 600, N)],
        "county": rng.choice(["Alder County", "O'Brien County", "Back\\slash"], N).tolist(),
        "region": rng.choice(["North", "South", "Central"], N).tolist(),
        "zip5": [f"{int(z):05d}" for z in rng.integers(43000, 43300, N)],
    }


@pytest.fixture
def artifact_and_rows() -> tuple[ModelArtifact, dict[str, list[object]]]:
    rng = np.random.default_rng(12)
    rows = voter_rows(rng)
    seen = np.unique(RowHasher(DEFAULT_SPEC).transform(rows).indices)
    w = np.zeros(DEFAULT_SPEC.n_features)
    w[seen] = rng.normal(0, 0.7, seen.size)
    w[bucket("contact_type=walk", DEFAULT_SPEC.hash_bits)] = 0.25  # the context default's weight must count
    return ModelArtifact.build(w, -0.3, DEFAULT_SPEC), rows


def test_sql_scores_equal_numpy_scores(client: Client, artifact_and_rows: tuple[ModelArtifact, dict]) -> None:  # type: ignore[type-arg]
    artifact, rows = artifact_and_rows
    client.command(
        "CREATE TABLE score_test (voter_id String, party LowCardinality(String), gender LowCardinality(String), "
        "birth_year Nullable(UInt16), registration_date Nullable(Date32), vote_history Array(LowCardinality(String)), "
        "precinct_id String, county String, region String, zip5 String) ENGINE = Memory"
    )
    client.insert("score_test", [list(r) for r in zip(*rows.values(), strict=True)], column_names=list(rows))
    sql = score_sql(artifact)
    result = client.query(
        f"WITH {sql.with_clause} SELECT voter_id, {sql.expression} AS score FROM score_test ORDER BY voter_id"
    ).result_rows
    by_sql = np.array([score for _, score in result])
    assert [voter for voter, _ in result] == rows["voter_id"]
    expected = artifact.scorer().score_rows(rows)  # contact_type absent: its default "walk"
    np.testing.assert_allclose(by_sql, expected, rtol=0, atol=1e-12)
    assert expected.std() > 0.1  # a meaningful spread, not a constant


def test_context_fields_can_be_mapped_and_required_columns_cannot_be_missing(
    artifact_and_rows: tuple[ModelArtifact, dict],  # type: ignore[type-arg]
) -> None:
    artifact, _ = artifact_and_rows
    constant = score_sql(artifact).logit
    assert repr(0.25) in constant and "contact_type" not in constant
    mapped = score_sql(artifact, {"contact_type": "channel"}).logit
    assert "concat('contact_type=', ifNull(toString(channel), ''))" in mapped
    spec = DEFAULT_SPEC
    no_default = type(spec)(spec.version, spec.hash_bits, (*spec.fields[:-1], FieldSpec("contact_type")))
    strict = ModelArtifact.build(artifact.coefficients, artifact.intercept, no_default)
    assert "`contact_type`" in score_sql(strict).logit  # read by name when there is no default
