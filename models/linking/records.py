"""What goes into the matcher (people to link, the voter file) and what comes out (one result each).

Emails and phones arrive as the keyed hashes made at ingest (streams.pii: HMAC-SHA256 hex
digests), never in the clear; names, address, zip and birth year arrive as typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One signup's or email person's identifying fields; every field but record_id is optional."""

    record_id: str
    given_name: str | None = None
    family_name: str | None = None
    email_hash: str | None = None
    phone_hash: str | None = None
    address_line1: str | None = None
    zip5: str | None = None
    birth_year: int | None = None


@dataclass(frozen=True)
class VoterColumns:
    """The voter file column by column (as a warehouse query returns it); all sequences one length."""

    voter_id: Sequence[str]
    given_name: Sequence[str | None]
    family_name: Sequence[str | None]
    birth_year: Sequence[int | None]
    zip5: Sequence[str | None]
    address_line1: Sequence[str | None]
    email_hash: Sequence[str | None]
    phone_hash: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.voter_id)

    def __post_init__(self) -> None:
        lengths = {len(getattr(self, name)) for name in self.__dataclass_fields__}
        if len(lengths) > 1:
            raise ValueError(f"voter file columns differ in length: {sorted(lengths)}")


class Status(StrEnum):
    MATCHED = "matched"
    AMBIGUOUS = "ambiguous"  # for review: a likely match, but not certain enough or not one clear voter
    UNMATCHED = "unmatched"


class Method(StrEnum):
    EMAIL = "email"  # email hash, given name not contradicting
    PHONE = "phone"  # phone hash, given name not contradicting
    NAME_ZIP_BIRTH_YEAR = "name_zip_birth_year"
    NAME_ADDRESS = "name_address"
    PROBABILISTIC = "probabilistic"  # Fellegi-Sunter posterior
    NONE = "none"

    @property
    def kind(self) -> str:
        """The coarse method of the domain notes: email, deterministic or probabilistic."""
        if self in (Method.EMAIL, Method.PROBABILISTIC, Method.NONE):
            return self.value
        return "deterministic"


@dataclass(frozen=True, slots=True)
class Candidate:
    voter_id: str
    probability: float  # posterior that this voter is the person (the candidates' sum is at most 1)
    match_weight: float  # log2 posterior odds of this pair on its own (Splink's match weight)


@dataclass(frozen=True, slots=True)
class LinkResult:
    record_id: str
    status: Status
    voter_id: str | None  # set when matched
    method: Method
    probability: float  # the posterior of the linked voter, else of the best candidate (0 without any)
    match_weight: float | None  # that pair's log2 posterior odds on its own; None without a candidate
    candidates: tuple[Candidate, ...]  # best first, a few at most: what a reviewer is shown
