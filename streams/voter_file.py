"""Reading and validating a voter file (CSV or Parquet) into typed Arrow batches, vectorised.

The documented columns (docs/data-dictionary.md, "Voter file"): `voter_id` and `precinct_id` are
required; every other column is optional and may be empty. Unknown columns are ignored and named in
the report. Each row is either loaded or rejected with one reason (the first check it fails), with
its row number, so a data manager can fix the file; no rejected row stops the load.

Emails and phones are keyed-hashed here, before anything leaves the process; names and the street
address are kept, because identity linking (issue #5) needs them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from config.geography import Geography
from streams.pii import PiiHasher

REQUIRED_COLUMNS = ("voter_id", "precinct_id")
OPTIONAL_COLUMNS = (
    "household_id", "given_name", "family_name", "birth_year", "gender", "party", "registration_date",
    "vote_history", "address_line1", "zip5", "email", "phone",
)  # fmt: skip
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
GENDERS = ("F", "M", "X", "U")
OLDEST_BIRTH_YEAR = 1900
MINIMUM_VOTING_AGE = 17  # pre-registration starts at 16 or 17 in many states; 17 keeps the file honest
READ_BLOCK_BYTES = 8 << 20

# The schema of what is loaded (sinks/clickhouse/schema.py VOTERS, less the load bookkeeping).
LOADED_SCHEMA = pa.schema(
    [
        ("voter_id", pa.string()), ("household_id", pa.string()), ("precinct_id", pa.string()),
        ("county", pa.string()), ("region", pa.string()), ("state", pa.string()),
        ("given_name", pa.string()), ("family_name", pa.string()), ("birth_year", pa.uint16()),
        ("gender", pa.string()), ("party", pa.string()), ("registration_date", pa.date32()),
        ("vote_history", pa.list_(pa.string())), ("address_line1", pa.string()), ("zip5", pa.string()),
        ("email_hash", pa.string()), ("phone_hash", pa.string()),
    ]
)  # fmt: skip


class VoterFileError(ValueError):
    """The file as a whole cannot be read (missing required columns, unknown format, unreadable)."""


@dataclass(frozen=True)
class RejectedVoterRow:
    row_number: int  # 1 = the first data row
    voter_id: str
    reason: str


@dataclass(frozen=True)
class VoterBatch:
    index: int
    first_row: int
    rows_read: int
    loaded: pa.Table  # LOADED_SCHEMA
    rejected: list[RejectedVoterRow]


@dataclass
class VoterFileReport:
    path: str
    sha256: str
    rows_read: int = 0
    rows_loaded: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    first_rejections: list[RejectedVoterRow] = field(default_factory=list)
    ignored_columns: tuple[str, ...] = ()

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    def add(self, batch: VoterBatch, keep: int = 20) -> None:
        self.rows_read += batch.rows_read
        self.rows_loaded += batch.loaded.num_rows
        for row in batch.rejected:
            self.rejected_by_reason[row.reason] += 1
            if len(self.first_rejections) < keep:
                self.first_rejections.append(row)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise VoterFileError(f"{path.name}: unknown voter file format {suffix!r} (expected .csv or .parquet)")


class VoterFileReader:
    """Streams a voter file as validated batches; `columns` and `ignored_columns` are known once opened."""

    def __init__(self, path: Path, geography: Geography, secret: bytes, batch_rows: int = 100_000) -> None:
        self.path = path
        self.format = detect_format(path)
        self._geography = geography
        self._hasher = PiiHasher(secret, cache_size=0)
        self._batch_rows = batch_rows
        self._seen: set[str] = set()
        self._this_year = dt.date.today().year
        self.columns = self._header()
        missing = [c for c in REQUIRED_COLUMNS if c not in self.columns]
        if missing:
            raise VoterFileError(f"{path.name}: missing required column(s) {missing}; found {list(self.columns)}")
        self.ignored_columns = tuple(c for c in self.columns if c not in KNOWN_COLUMNS)
        precincts = geography.precincts
        ids = sorted(precincts)
        self._precinct_ids = pa.array(ids, pa.string())
        self._county = pa.array([precincts[p].county for p in ids], pa.string())
        self._region = pa.array([precincts[p].region for p in ids], pa.string())
        self._state = pa.array([precincts[p].state for p in ids], pa.string())

    def _header(self) -> tuple[str, ...]:
        try:
            if self.format == "csv":
                with self.path.open(newline="", encoding="utf-8-sig") as handle:
                    header = next(csv.reader(handle), None)
                if not header:
                    raise VoterFileError(f"{self.path.name}: empty file (a header row is required)")
                return tuple(name.strip() for name in header)
            return tuple(pq.ParquetFile(self.path).schema_arrow.names)
        except (OSError, UnicodeDecodeError, pa.ArrowException) as exc:
            raise VoterFileError(f"{self.path.name}: cannot read: {exc}") from exc

    def _raw_batches(self) -> Iterator[pa.RecordBatch]:
        if self.format == "csv":
            reader = pa_csv.open_csv(
                self.path,
                read_options=pa_csv.ReadOptions(block_size=READ_BLOCK_BYTES, column_names=list(self.columns),
                                                skip_rows=1, encoding="utf8"),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types={c: pa.string() for c in self.columns}, strings_can_be_null=False,
                    include_columns=[c for c in self.columns if c in KNOWN_COLUMNS],
                ),
            )  # fmt: skip
            yield from reader
        else:
            parquet = pq.ParquetFile(self.path)
            wanted = [c for c in self.columns if c in KNOWN_COLUMNS]
            yield from parquet.iter_batches(batch_size=self._batch_rows, columns=wanted)

    def batches(self) -> Iterator[VoterBatch]:
        """Validated batches of at most `batch_rows` rows, in file order."""
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        first_row = 1
        index = 0
        try:
            for raw in self._raw_batches():
                pending.append(raw)
                pending_rows += raw.num_rows
                while pending_rows >= self._batch_rows:
                    table = pa.Table.from_batches(pending)
                    head, rest = table.slice(0, self._batch_rows), table.slice(self._batch_rows)
                    yield self._validate(index, first_row, head)
                    index, first_row = index + 1, first_row + head.num_rows
                    pending, pending_rows = rest.to_batches(), rest.num_rows
        except pa.ArrowInvalid as exc:
            raise VoterFileError(
                f"{self.path.name}: malformed near data row {first_row + pending_rows}: {exc}"
            ) from exc
        if pending_rows:
            yield self._validate(index, first_row, pa.Table.from_batches(pending))

    # --- validation --------------------------------------------------------------------------

    def _text(self, table: pa.Table, name: str) -> pa.ChunkedArray:
        """The column as trimmed strings ('' when absent or null): Parquet may hold ints or dates."""
        if name not in table.column_names:
            return pa.chunked_array([pa.array([""] * table.num_rows, pa.string())])
        column = table.column(name)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = pc.cast(column, pa.string())
        return pc.utf8_trim_whitespace(pc.fill_null(column, ""))

    def _validate(self, index: int, first_row: int, table: pa.Table) -> VoterBatch:
        n = table.num_rows
        text = {name: self._text(table, name) for name in KNOWN_COLUMNS}
        reasons: list[tuple[str, pa.ChunkedArray | pa.Array]] = []

        def empty(name: str) -> pa.ChunkedArray:
            return pc.equal(pc.utf8_length(text[name]), 0)

        def bad_unless_empty(name: str, ok: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
            return pc.and_(pc.invert(empty(name)), pc.invert(ok))

        voter_id, precinct = text["voter_id"], text["precinct_id"]
        reasons.append(("missing_voter_id", empty("voter_id")))
        reasons.append(("bad_voter_id", pc.invert(pc.match_substring_regex(voter_id, r"^[A-Za-z0-9_.:\-]{1,64}$"))))
        reasons.append(("missing_precinct_id", empty("precinct_id")))
        reasons.append(("unknown_precinct", pc.invert(pc.is_in(precinct, value_set=self._precinct_ids))))
        year_ok = pc.match_substring_regex(text["birth_year"], r"^\d{4}$")
        year = pc.cast(pc.if_else(year_ok, text["birth_year"], "0"), pa.int32())
        year_ok = pc.and_(year_ok, pc.and_(pc.greater_equal(year, OLDEST_BIRTH_YEAR),
                                            pc.less_equal(year, self._this_year - MINIMUM_VOTING_AGE)))  # fmt: skip
        reasons.append(("bad_birth_year", bad_unless_empty("birth_year", year_ok)))
        gender = pc.utf8_upper(text["gender"])
        reasons.append(("bad_gender", bad_unless_empty("gender", pc.is_in(gender, value_set=pa.array(GENDERS)))))
        party = pc.utf8_upper(text["party"])
        reasons.append(("bad_party", bad_unless_empty("party", pc.match_substring_regex(party, r"^[A-Z0-9]{1,8}$"))))
        registered = pc.strptime(text["registration_date"], format="%Y-%m-%d", unit="s", error_is_null=True)
        # strptime rolls 2004-02-30 over to March: a real date prints back as it was written.
        round_trip = pc.equal(pc.strftime(registered, format="%Y-%m-%d"), text["registration_date"])
        registered_ok = pc.and_(pc.is_valid(registered), pc.fill_null(round_trip, False))
        reasons.append(("bad_registration_date", bad_unless_empty("registration_date", registered_ok)))
        history_ok = pc.match_substring_regex(text["vote_history"], r"^[A-Za-z0-9_]{1,16}(;[A-Za-z0-9_]{1,16})*$")
        reasons.append(("bad_vote_history", bad_unless_empty("vote_history", history_ok)))
        zip_ok = pc.match_substring_regex(text["zip5"], r"^\d{5}(-\d{4})?$")
        reasons.append(("bad_zip5", bad_unless_empty("zip5", zip_ok)))
        for name in ("household_id", "given_name", "family_name", "address_line1"):
            reasons.append((f"bad_{name}", pc.greater(pc.utf8_length(text[name]), 128)))
        reasons.append(("bad_email", pc.greater(pc.utf8_length(text["email"]), 320)))
        reasons.append(("bad_phone", pc.greater(pc.utf8_length(text["phone"]), 40)))

        # The first failing check names the row's reason.
        reason_of_row: list[str | None] = [None] * n
        for reason, failed in reasons:
            for i in pc.indices_nonzero(failed).to_pylist():
                if reason_of_row[i] is None:
                    reason_of_row[i] = reason
        ids = voter_id.to_pylist()
        for i, voter in enumerate(ids):  # duplicates are judged across the whole file: keep the first
            if reason_of_row[i] is None:
                if voter in self._seen:
                    reason_of_row[i] = "duplicate_voter_id"
                else:
                    self._seen.add(voter)
        rejected = [
            RejectedVoterRow(first_row + i, ids[i][:64], reason) for i, reason in enumerate(reason_of_row) if reason
        ]
        keep = pa.array([reason is None for reason in reason_of_row], pa.bool_())
        return VoterBatch(index, first_row, n, self._loaded(text, gender, party, year, registered, keep), rejected)

    def _loaded(
        self,
        text: dict[str, pa.ChunkedArray],
        gender: pa.ChunkedArray,
        party: pa.ChunkedArray,
        year: pa.ChunkedArray,
        registered: pa.ChunkedArray,
        keep: pa.Array,
    ) -> pa.Table:
        def kept(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
            return pc.filter(column, keep)

        precinct = kept(text["precinct_id"])
        where = pc.index_in(precinct, value_set=self._precinct_ids)
        birth_year = kept(pc.if_else(pc.greater(year, 0), year, None))
        history = kept(text["vote_history"])
        history = pc.if_else(pc.equal(pc.utf8_length(history), 0), None, history)
        emails, phones = kept(text["email"]).to_pylist(), kept(text["phone"]).to_pylist()
        return pa.table(
            {
                "voter_id": kept(text["voter_id"]),
                "household_id": kept(text["household_id"]),
                "precinct_id": precinct,
                "county": pc.take(self._county, where),
                "region": pc.take(self._region, where),
                "state": pc.take(self._state, where),
                "given_name": kept(text["given_name"]),
                "family_name": kept(text["family_name"]),
                "birth_year": pc.cast(birth_year, pa.uint16()),
                "gender": kept(gender),
                "party": kept(party),
                "registration_date": pc.cast(kept(registered), pa.date32()),
                "vote_history": pc.fill_null(pc.split_pattern(history, ";"), pa.scalar([], pa.list_(pa.string()))),
                "address_line1": kept(text["address_line1"]),
                "zip5": pc.utf8_slice_codeunits(kept(text["zip5"]), 0, 5),
                "email_hash": pa.array([self._hasher.email(e) for e in emails], pa.string()),
                "phone_hash": pa.array([self._hasher.phone(p) for p in phones], pa.string()),
            },
            schema=LOADED_SCHEMA,
        )
