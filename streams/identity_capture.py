"""Identity capture at ingest: the person fields of accepted signups, for linking (issue #5).

Validation (streams/processing.py) turns a signup into its analytics row, which keeps only hashes
of the contact points. The matcher also needs the name and address, so for the accepted rows of
a batch this decodes the `person` object once more (msgspec skips every other field, so it costs
little beside validation) and pairs it with the row's hashes. The rows go into `signup_identities`
in the same token-carrying write as the batch's raw rows, so a replay stores them exactly once too.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from streams.events import Person
from streams.processing import KafkaRecord
from streams.rows import SignupIdentityRow, SignupRow


class _PersonOnly(msgspec.Struct, frozen=True, gc=False):
    person: Person


def _clean(text: str | None) -> str:
    """Trimmed, inner whitespace collapsed: formatting only; the matcher normalises the rest."""
    return " ".join(text.split()) if text else ""


class IdentityCapture:
    def __init__(self) -> None:
        self._decode = msgspec.json.Decoder(_PersonOnly).decode

    def rows(self, accepted: Sequence[msgspec.Struct], records: Sequence[KafkaRecord]) -> list[SignupIdentityRow]:
        """One identity row per accepted signup row; `records` are the batch's Kafka records (any order)."""
        by_offset = {record.offset(): record for record in records}
        out: list[SignupIdentityRow] = []
        for row in accepted:
            assert isinstance(row, SignupRow)
            record = by_offset.get(row.kafka_offset)
            if record is None:  # cannot happen: every row comes from one of the records
                continue
            person = self._decode(record.value() or b"").person  # validated already: this decode succeeds
            out.append(
                SignupIdentityRow(
                    row.event_id, _clean(person.given_name), _clean(person.family_name),
                    _clean(person.address_line1), row.zip5, row.birth_year, row.email_hash, row.phone_hash,
                    row.kafka_partition, row.kafka_offset,
                )
            )  # fmt: skip
        return out
