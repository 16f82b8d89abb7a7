"""Identity matching: linking signups and email people to voter-file records.

Pure Python/numpy (no Kafka, no ClickHouse): the stream hands a micro-batch of `PersonRecord`s to
`Matcher.link` and stores the `LinkResult`s. Pipeline, one module each:

- normalize, address, nicknames, phonetic: comparable forms of names, addresses, zips, years
- encode, hashing: people as integer columns; index: the voter file and its blocking keys
- levels, compare: comparison vectors; model, scoring: Fellegi-Sunter weights and posteriors
- rules: deterministic field sets; matcher: the decision; em, training: estimating m, u and the
  match rate from unlabelled data

Method, parameters and measured accuracy: docs/linking.md.
"""

from models.linking.index import BlockingConfig, BlockingKey, VoterIndex
from models.linking.matcher import MatchConfig, Matcher
from models.linking.model import LinkageModel
from models.linking.records import Candidate, LinkResult, Method, PersonRecord, Status, VoterColumns
from models.linking.training import TrainingConfig, TrainingReport, train

__all__ = [
    "BlockingConfig",
    "BlockingKey",
    "Candidate",
    "LinkResult",
    "LinkageModel",
    "MatchConfig",
    "Matcher",
    "Method",
    "PersonRecord",
    "Status",
    "TrainingConfig",
    "TrainingReport",
    "VoterColumns",
    "VoterIndex",
    "train",
]
