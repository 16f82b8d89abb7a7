"""Hashed `field=value` indicator features, and the `FeatureSpec` that pins them down.

Every field of a row becomes exactly one active feature: the bucket of the text `name=value`
(`party=D`, `birth_year=[1956,1966)`, `voted_g2024=1`, a missing value as `party=`) in a space of
2**hash_bits columns. The hash is MurmurHash3 x86 32-bit, seed 0, over the UTF-8 key, taken
modulo 2**bits (`sklearn.utils.murmurhash3_32`): the same spec gives the same columns in every
process, and ClickHouse's `murmurHash3_32(key)` returns the same number, so a linear model can
also be evaluated in SQL (sql.py). Features are not sign-hashed: with a few thousand distinct
keys in 2**18 buckets collisions are rare, and unsigned buckets keep the SQL form simple.

Kinds of field (each has a one-line SQL equivalent in sql.py):
- categorical: the value's text. None, NaN and "" are missing; booleans are "1"/"0"; integral
  floats print as integers (so 1, 1.0 and True are one key); anything else goes through `str`.
- banded: a number cut at ascending `edges`; band i holds edges[i-1] <= x < edges[i].
- year_band: the same on the calendar year of a date (a date, datetime64, or "YYYY-MM-DD" text).
- member: "1" if `member` is in a list-valued column (a list, tuple, set or ";"-joined text,
  as the voter file stores vote history), else "0".
Missing or unparseable values of every kind get their own `name=` key.

A field may carry a `default`, used when the input lacks its column entirely: context fields
such as the canvass channel are absent when the whole voter file is rescored.

Because each row has exactly one entry per field, `HashedFeatures` is an (n_rows, n_fields)
matrix of bucket indices: scoring is a gather and a row sum, and the CSR form is free to build.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import scipy.sparse as sp

HASH_NAME = "murmurhash3_32"
MIN_HASH_BITS = 8
MAX_HASH_BITS = 22  # 4M columns, 32 MiB of float64 coefficients: the artifact loader's ceiling
MAX_EDGES = 64
FieldKind = Literal["categorical", "banded", "year_band", "member"]
FIELD_KINDS = ("categorical", "banded", "year_band", "member")
LIST_SEPARATOR = ";"
IndexArray = npt.NDArray[np.int32]
Columns = Mapping[str, Sequence[Any] | npt.NDArray[Any]]
Records = Sequence[Mapping[str, Any]]


class FeatureSpecError(ValueError):
    """A feature spec (or its JSON form) is malformed; the message says what is wrong."""


def bucket(key: str, hash_bits: int) -> int:
    """The column of one `name=value` key."""
    # Imported on first use: scikit-learn takes ~1.6 s to import, which a worker's start-up (target
    # 5 s to the first event) should not pay before any model scores.
    from sklearn.utils import murmurhash3_32

    return int(murmurhash3_32(key, seed=0, positive=True)) & ((1 << hash_bits) - 1)


def value_text(value: object) -> str:
    """The text a categorical value is hashed as ("" when missing)."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return ""
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


def _number_text(edge: float) -> str:
    return str(int(edge)) if float(edge).is_integer() else repr(float(edge))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One input field; `source` is its column in the rows (default: `name`)."""

    name: str
    kind: FieldKind = "categorical"
    edges: tuple[float, ...] = ()
    source: str | None = None
    default: str | None = None
    member: str | None = None

    def __post_init__(self) -> None:
        if not self.name or "=" in self.name or not self.name.isprintable():
            raise FeatureSpecError(f"field name {self.name!r} must be non-empty printable text without '='")
        if self.kind not in FIELD_KINDS:
            raise FeatureSpecError(f"field {self.name}: kind must be one of {FIELD_KINDS}, not {self.kind!r}")
        if not self.is_banded and self.edges:
            raise FeatureSpecError(f"field {self.name}: only banded fields have edges")
        if (self.kind == "member") != bool(self.member):
            raise FeatureSpecError(f"field {self.name}: a member field (and only one) names its `member`")
        if self.is_banded:
            edges = self.edges
            if not 1 <= len(edges) <= MAX_EDGES:
                raise FeatureSpecError(f"field {self.name}: a banded field needs 1..{MAX_EDGES} edges")
            if not all(math.isfinite(e) for e in edges) or any(b <= a for a, b in itertools.pairwise(edges)):
                raise FeatureSpecError(f"field {self.name}: edges must be finite and strictly ascending")
            object.__setattr__(self, "edges", tuple(float(e) for e in edges))
        if self.source is not None and not self.source:
            raise FeatureSpecError(f"field {self.name}: source must be a column name")

    @property
    def column(self) -> str:
        return self.source or self.name

    @property
    def is_banded(self) -> bool:
        return self.kind in ("banded", "year_band")

    def band_labels(self) -> tuple[str, ...]:
        """Labels of bands 0..len(edges): `<a`, `[a,b)`, ..., `>=z`."""
        text = [_number_text(e) for e in self.edges]
        inner = [f"[{a},{b})" for a, b in itertools.pairwise(text)]
        return (f"<{text[0]}", *inner, f">={text[-1]}")

    def key(self, text: str) -> str:
        return f"{self.name}={text}"

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.edges:
            out["edges"] = list(self.edges)
        if self.source is not None:
            out["source"] = self.source
        if self.default is not None:
            out["default"] = self.default
        if self.member is not None:
            out["member"] = self.member
        return out

    @classmethod
    def from_json_dict(cls, data: object) -> FieldSpec:
        if not isinstance(data, dict):
            raise FeatureSpecError("each field must be a JSON object")
        unknown = set(data) - {"name", "kind", "edges", "source", "default", "member"}
        if unknown:
            raise FeatureSpecError(f"field has unknown keys {sorted(unknown)}")
        name, kind = data.get("name"), data.get("kind", "categorical")
        edges, source, default = data.get("edges", []), data.get("source"), data.get("default")
        member = data.get("member")
        if not isinstance(name, str) or not isinstance(kind, str):
            raise FeatureSpecError("field name and kind must be strings")
        numeric = isinstance(edges, list) and all(isinstance(e, int | float) and not isinstance(e, bool) for e in edges)
        if not numeric:
            raise FeatureSpecError(f"field {name}: edges must be a list of numbers")
        if not all(v is None or isinstance(v, str) for v in (source, default, member)):
            raise FeatureSpecError(f"field {name}: source, default and member must be strings")
        return cls(name, cast(FieldKind, kind), tuple(float(e) for e in edges), source, default, member)


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """What a model's columns mean. Equal specs hash every row to the same columns."""

    version: str
    hash_bits: int
    fields: tuple[FieldSpec, ...]
    hash: str = HASH_NAME

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version:
            raise FeatureSpecError("version must be a non-empty string")
        if isinstance(self.hash_bits, bool) or not isinstance(self.hash_bits, int):
            raise FeatureSpecError("hash_bits must be an integer")
        if not MIN_HASH_BITS <= self.hash_bits <= MAX_HASH_BITS:
            raise FeatureSpecError(f"hash_bits must be in [{MIN_HASH_BITS}, {MAX_HASH_BITS}], got {self.hash_bits}")
        if self.hash != HASH_NAME:
            raise FeatureSpecError(f"unsupported hash {self.hash!r}; only {HASH_NAME}")
        object.__setattr__(self, "fields", tuple(self.fields))
        if not self.fields:
            raise FeatureSpecError("a spec needs at least one field")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise FeatureSpecError(f"field names repeat: {names}")

    @property
    def n_features(self) -> int:
        return 1 << self.hash_bits

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def columns(self) -> tuple[str, ...]:
        """The input columns the rows must provide (context fields with defaults may be left out)."""
        return tuple(dict.fromkeys(f.column for f in self.fields))

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "hash": self.hash,
            "hash_bits": self.hash_bits,
            "fields": [f.to_json_dict() for f in self.fields],
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces (the fingerprint is its sha256)."""
        return json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json_dict(cls, data: object) -> FeatureSpec:
        if not isinstance(data, dict):
            raise FeatureSpecError("a feature spec must be a JSON object")
        unknown = set(data) - {"version", "hash", "hash_bits", "fields"}
        if unknown:
            raise FeatureSpecError(f"feature spec has unknown keys {sorted(unknown)}")
        fields = data.get("fields")
        if not isinstance(fields, list):
            raise FeatureSpecError("feature spec fields must be a list")
        return cls(
            version=cast(str, data.get("version")),
            hash_bits=cast(int, data.get("hash_bits")),
            fields=tuple(FieldSpec.from_json_dict(f) for f in fields),
            hash=cast(str, data.get("hash", HASH_NAME)),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSpec:
        try:
            return cls.from_json_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise FeatureSpecError(f"feature spec is not JSON: {exc}") from exc

    def differences(self, other: FeatureSpec) -> list[str]:
        """Human-readable reasons why `other` would hash rows differently (empty when equal)."""
        out: list[str] = []
        if self.hash != other.hash or self.hash_bits != other.hash_bits:
            out.append(f"hash {self.hash}/{self.hash_bits} bits vs {other.hash}/{other.hash_bits} bits")
        if self.version != other.version:
            out.append(f"spec version {self.version!r} vs {other.version!r}")
        mine, theirs = {f.name: f for f in self.fields}, {f.name: f for f in other.fields}
        if missing := [n for n in mine if n not in theirs]:
            out.append(f"fields only in the first: {missing}")
        if extra := [n for n in theirs if n not in mine]:
            out.append(f"fields only in the second: {extra}")
        out.extend(f"field {n} differs: {mine[n]} vs {theirs[n]}" for n in mine if n in theirs and mine[n] != theirs[n])
        if not out and [f.name for f in self.fields] != [f.name for f in other.fields]:
            out.append("same fields in a different order")
        return out


# Elections in the voter file's vote_history (streams/simulation/voter_export.py writes the same codes).
VOTE_HISTORY_ELECTIONS = ("G2024", "P2024", "G2022", "P2022", "G2020")

DEFAULT_SPEC = FeatureSpec(
    version="support-v1",
    hash_bits=18,
    fields=(
        FieldSpec("party"),
        FieldSpec("gender"),
        # Birth-year cohorts rather than ages, so a row's features do not change with the calendar;
        # the edges are ten-year age bands as of 2026 (ages 30, 40, ..., 80).
        FieldSpec("birth_year", "banded", (1946.0, 1956.0, 1966.0, 1976.0, 1986.0, 1996.0)),
        FieldSpec(
            "registration_year",
            "year_band",
            (2000.0, 2010.0, 2016.0, 2020.0, 2022.0, 2024.0),
            source="registration_date",
        ),
        *(FieldSpec(f"voted_{e.lower()}", "member", source="vote_history", member=e) for e in VOTE_HISTORY_ELECTIONS),
        FieldSpec("precinct_id"),
        FieldSpec("county"),
        FieldSpec("region"),
        FieldSpec("zip5"),
        FieldSpec("contact_type", default="walk"),
    ),
)


@dataclass(frozen=True, slots=True)
class HashedFeatures:
    """Bucket indices, one column per spec field: row i's active features are `indices[i]`."""

    indices: IndexArray
    n_features: int

    def __post_init__(self) -> None:
        if self.indices.ndim != 2:
            raise ValueError("indices must be 2-D (rows x fields)")

    @property
    def n_rows(self) -> int:
        return int(self.indices.shape[0])

    def __len__(self) -> int:
        return self.n_rows

    def take(self, rows: npt.NDArray[np.integer[Any]] | npt.NDArray[np.bool_] | slice) -> HashedFeatures:
        return HashedFeatures(np.ascontiguousarray(self.indices[rows]), self.n_features)

    def to_csr(self) -> sp.csr_matrix:  # scipy.sparse imported here: start-up need not pay for it
        """The 0/1 design matrix (a collision within a row sums to 2, as in the linear score).

        The indices are copied: `sum_duplicates` compacts them in place, which would corrupt these rows.
        """
        n, width = self.indices.shape
        indptr = np.arange(0, n * width + 1, width, dtype=np.int64)
        data = np.ones(n * width, dtype=np.float64)
        import scipy.sparse as sp

        matrix = sp.csr_matrix((data, self.indices.ravel().copy(), indptr), shape=(n, self.n_features))
        matrix.sum_duplicates()
        return matrix


@dataclass
class RowHasher:
    """Turns rows into `HashedFeatures` for one spec, remembering the buckets of values it has seen.

    Rows are either columns (a mapping of column name → sequence or numpy array, the fast path) or
    records (a sequence of mappings). A column the spec needs but the rows lack takes the field's
    `default`; with no default, a missing column is an error (it is almost always a typo), while a
    key missing from one record is just a missing value.
    """

    spec: FeatureSpec
    cache_limit: int = 200_000  # distinct values remembered per field; cleared when exceeded
    _caches: list[dict[object, int]] = field(init=False, repr=False)
    _band_buckets: list[IndexArray | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._caches = [{} for _ in self.spec.fields]
        self._band_buckets = []
        for f in self.spec.fields:
            if not f.is_banded:
                self._band_buckets.append(None)
                continue
            keys = [f.key(label) for label in f.band_labels()] + [f.key("")]  # last: missing
            self._band_buckets.append(np.array([bucket(k, self.spec.hash_bits) for k in keys], dtype=np.int32))

    def transform(self, rows: Columns | Records) -> HashedFeatures:
        """Rows as columns (a mapping, or a pandas DataFrame) or as records (a sequence of mappings)."""
        if isinstance(rows, Mapping):
            return self._from_columns(rows)
        if hasattr(rows, "columns") and hasattr(rows, "to_numpy"):  # a DataFrame, without importing pandas
            frame = cast(Any, rows)
            return self._from_columns({str(c): frame[c].to_numpy() for c in frame.columns})
        return self._from_records(rows)

    __call__ = transform

    def _from_columns(self, rows: Columns) -> HashedFeatures:
        lengths = {len(column) for column in rows.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns differ in length: {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        out = np.empty((n, self.spec.n_fields), dtype=np.int32)
        lists: dict[str, list[Any]] = {}
        for j, f in enumerate(self.spec.fields):
            column = rows.get(f.column)
            if column is None:
                if f.default is None:
                    raise KeyError(f"rows lack column {f.column!r} (field {f.name}, which has no default)")
                if f.kind == "categorical":  # one constant key for every row
                    out[:, j] = bucket(f.key(value_text(f.default)), self.spec.hash_bits)
                    continue
                column = [f.default] * n
            out[:, j] = self._hash_column(j, column, lists)
        return HashedFeatures(out, self.spec.n_features)

    def _from_records(self, rows: Records) -> HashedFeatures:
        out = np.empty((len(rows), self.spec.n_fields), dtype=np.int32)
        lists: dict[str, list[Any]] = {}
        for j, f in enumerate(self.spec.fields):
            name, default = f.column, f.default
            out[:, j] = self._hash_column(j, [r.get(name, default) for r in rows], lists)
        return HashedFeatures(out, self.spec.n_features)

    def _hash_column(self, j: int, column: Sequence[Any] | npt.NDArray[Any], lists: dict[str, list[Any]]) -> IndexArray:
        band_buckets = self._band_buckets[j]
        if band_buckets is not None:
            return self._hash_banded(self.spec.fields[j], band_buckets, column)
        f, cache = self.spec.fields[j], self._caches[j]
        if f.kind == "member":
            # Several fields usually read one list column (vote history): make it hashable once.
            if f.column not in lists:
                lists[f.column] = _hashable_lists(column)
            return self._hash_member(j, lists[f.column])
        if isinstance(column, np.ndarray):
            if column.dtype == np.bool_:
                table = np.array([bucket(f.key("0"), self.spec.hash_bits), bucket(f.key("1"), self.spec.hash_bits)])
                return table[column.astype(np.intp)].astype(np.int32)
            values: list[Any] = column.tolist()  # Python scalars: dict lookups are ~10x faster than on numpy ones
        else:
            values = column if isinstance(column, list) else list(column)
        bits = self.spec.hash_bits
        found = _cached(cache, values, lambda v: bucket(f.key(value_text(v)), bits), self.cache_limit)
        return np.fromiter(found, dtype=np.int32, count=len(found))

    def _hash_member(self, j: int, values: list[Any]) -> IndexArray:
        f, cache = self.spec.fields[j], self._caches[j]  # here the cache maps a list to its state 0/1/2
        bits = self.spec.hash_bits
        table = np.array([bucket(f.key(t), bits) for t in ("0", "1", "")], dtype=np.int32)
        member = cast(str, f.member)
        states = _cached(cache, values, lambda v: _membership(v, member), self.cache_limit)
        result: IndexArray = table[np.fromiter(states, dtype=np.intp, count=len(states))]
        return result

    @staticmethod
    def _hash_banded(f: FieldSpec, band_buckets: IndexArray, column: Sequence[Any] | npt.NDArray[Any]) -> IndexArray:
        numbers = _to_year(column) if f.kind == "year_band" else _to_float(column)
        band = np.searchsorted(np.asarray(f.edges), numbers, side="right")
        band[np.isnan(numbers)] = len(f.edges) + 1  # searchsorted puts NaN past the last edge
        result: IndexArray = band_buckets[band]
        return result


def _to_float(column: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Numbers as float64, NaN where missing or unparseable ("", None, "n/a")."""
    if isinstance(column, np.ndarray) and column.dtype.kind in "biuf":
        return column.astype(np.float64)
    try:
        return np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        return np.fromiter((_parse_float(v) for v in column), dtype=np.float64, count=len(column))


def _parse_float(value: object) -> float:
    if value is None or isinstance(value, bool | np.bool_):
        return math.nan if value is None else float(bool(value))
    try:
        return float(cast(Any, value))
    except (TypeError, ValueError):
        return math.nan


def _cached(cache: dict[object, int], values: list[Any], compute: Callable[[Any], int], limit: int) -> list[int]:
    """`compute` of every value, once per distinct value: a batch repeats the same few values."""
    get = cache.get
    try:
        found = [get(v) for v in values]
    except TypeError:  # an unhashable value (a list, say): no caching for this column
        return [compute(v) for v in values]
    if None not in found:
        return cast(list[int], found)
    if len(cache) > limit:
        cache.clear()
    for value in {v for v, known in zip(values, found, strict=True) if known is None}:
        cache[value] = compute(value)
    return [cache[v] if known is None else known for v, known in zip(values, found, strict=True)]


def _hashable_lists(column: Sequence[Any] | npt.NDArray[Any]) -> list[Any]:
    """List-valued cells as tuples (or frozensets), so that they can key a cache; others as they are."""
    values = column.tolist() if isinstance(column, np.ndarray) else list(column)
    first = next((v for v in values if v is not None), None)
    if first is None or isinstance(first, str):  # ";"-joined text is hashable as it is
        return values
    return [tuple(v) if isinstance(v, list | np.ndarray) else frozenset(v) if isinstance(v, set) else v for v in values]


def _membership(value: object, member: str) -> int:
    """1 if `member` is in the list, 0 if not, 2 when the list itself is missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 2
    if isinstance(value, str):
        return int(member in value.split(LIST_SEPARATOR))
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return int(member in list(value))
    return 2


def _to_year(column: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Calendar years of dates as float64, NaN where missing or unparseable."""
    if isinstance(column, np.ndarray) and column.dtype.kind == "M":
        years = column.astype("datetime64[Y]")
        out = years.astype(np.int64).astype(np.float64) + 1970.0
        out[np.isnat(years)] = math.nan
        return out
    values = column.tolist() if isinstance(column, np.ndarray) else column
    return np.fromiter((_year(v) for v in values), dtype=np.float64, count=len(values))


def _year(value: object) -> float:
    if isinstance(value, dt.date):  # datetime.datetime and pandas.Timestamp are dates too
        return float(value.year)
    if isinstance(value, str):
        head = value.strip()[:4]
        return float(head) if len(head) == 4 and head.isdigit() else math.nan
    if isinstance(value, np.datetime64):
        return math.nan if np.isnat(value) else float(value.astype("datetime64[Y]").astype(np.int64)) + 1970.0
    return math.nan
