"""A linear artifact as one ClickHouse SQL expression, for bulk rescoring inside the warehouse.

Pure text rendering (no ClickHouse import). Each field becomes a term whose value is the weight
of the key its row would hash to in Python (features.py):

- categorical: `murmurHash3_32(concat('party=', ifNull(toString(party), '')))` modulo 2**bits
  (ClickHouse's murmurHash3_32 equals sklearn's murmurhash3_32, seed 0), looked up with
  `transform()` in the artifact's non-zero buckets (a bucket with no weight adds 0);
- banded / year_band: the band is `(x >= e0) + (x >= e1) + ...` (the number of edges <= x, what
  numpy's `searchsorted(side="right")` returns), NULL the missing band; weights are an array literal;
- member: `has(list, 'G2024')` picks one of two weights;
- a context field (one with a default, such as the canvass channel) is the constant weight of
  its default unless `columns` maps it to an expression.

The non-zero buckets and weights are bound once in a WITH clause. Measured in embedded chDB on
the 2-core development machine (busy with other work): 0.86-1.17M voters/s for DEFAULT_SPEC's
14 fields over a 2M-row in-memory table. Categorical columns must be
strings or integers in SQL (toString of a Bool gives 'true', where Python hashes "1"). Floating
point sums may differ from numpy's in the last bits (another summation order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from models.scoring.artifact import ModelArtifact
from models.scoring.features import FieldSpec, bucket
from models.scoring.linear import FloatArray

BUCKETS_NAME = "gs_buckets"
WEIGHTS_NAME = "gs_weights"


@dataclass(frozen=True, slots=True)
class SqlScore:
    """`WITH {with_clause} SELECT {expression} AS score FROM voters`; `logit` without the sigmoid."""

    with_clause: str
    logit: str

    @property
    def expression(self) -> str:
        return f"1 / (1 + exp(-({self.logit})))"


def _literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _float(value: float) -> str:
    return repr(float(value))


def _float_array(values: list[float]) -> str:
    return "[" + ", ".join(_float(v) for v in values) + "]"


def score_sql(artifact: ModelArtifact, columns: Mapping[str, str] | None = None) -> SqlScore:
    """The artifact's score over a table.

    `columns` maps a spec column to a SQL expression; unmapped columns are read by name, except
    context fields (those with a default), which take their default when not mapped.
    """
    w = artifact.coefficients
    bits = artifact.spec.hash_bits
    nonzero = np.flatnonzero(w)
    with_clause = (
        f"CAST([{', '.join(str(int(b)) for b in nonzero)}] AS Array(UInt32)) AS {BUCKETS_NAME}, "
        f"CAST({_float_array(w[nonzero].tolist())} AS Array(Float64)) AS {WEIGHTS_NAME}"
    )
    names = dict(columns or {})
    terms = [_float(artifact.intercept)]
    for f in artifact.spec.fields:
        # Context fields (with a default) are constants unless mapped; the rest default to their column name.
        column = names.get(f.column) or (None if f.default is not None else f"`{f.column}`")
        terms.append(_term(f, column, w, bits))
    return SqlScore(with_clause, " + ".join(terms))


def _weight(f: FieldSpec, text: str, w: FloatArray, bits: int) -> float:
    return float(w[bucket(f.key(text), bits)])


def _term(f: FieldSpec, column: str | None, w: FloatArray, bits: int) -> str:
    if column is None:
        if f.default is None:
            raise KeyError(f"no SQL column for field {f.name} (column {f.column!r}) and it has no default")
        return _float(_weight(f, f.default, w, bits))
    if f.kind == "categorical":
        key = f"concat({_literal(f.name + '=')}, ifNull(toString({column}), ''))"
        return f"transform(murmurHash3_32({key}) % {1 << bits}, {BUCKETS_NAME}, {WEIGHTS_NAME}, 0.)"
    if f.kind == "member":
        weights = [_weight(f, t, w, bits) for t in ("1", "0")]
        return f"if(has({column}, {_literal(f.member or '')}), {_float(weights[0])}, {_float(weights[1])})"
    value = f"toYear({column})" if f.kind == "year_band" else column
    band_weights = [_weight(f, label, w, bits) for label in f.band_labels()]
    missing = _weight(f, "", w, bits)
    band = " + ".join(f"({value} >= {_float(e)})" for e in f.edges)
    return f"if(isNull({column}), {_float(missing)}, arrayElement({_float_array(band_weights)}, 1 + {band}))"
