"""Linking a micro-batch of people to the voter file: block, compare, rules, score, decide.

Decision, per person:
- a deterministic rule found exactly one voter → matched by that rule;
- else the best candidate's posterior ≥ `match_threshold` → matched, probabilistic;
- else the posterior that the person is *one of* the candidates ≥ `review_threshold` → ambiguous
  (a likely link that the evidence cannot pin down: Fellegi and Sunter's "possible link" region),
  with the candidates for a reviewer;
- else unmatched.
Every result carries the method, the posterior and the match weight of the chosen or best voter.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.linking.compare import Comparer, Levels
from models.linking.encode import I32, Encoded
from models.linking.index import VoterIndex
from models.linking.model import LinkageModel
from models.linking.records import Candidate, LinkResult, Method, PersonRecord, Status
from models.linking.rules import DEFAULT_MAX_CHANCE, DEFAULT_RULES, deterministic_links
from models.linking.scoring import match_weights, outside_odds, posteriors

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MatchConfig:
    rules: tuple[Method, ...] = DEFAULT_RULES
    # The posterior ran conservative in simulation (pairs scored 0.80-0.90 were right 93-95% of the
    # time); at 0.80 signup precision stayed above 99.3% on every seed and name pool
    # (docs/linking.md). Raise it if review outcomes show otherwise on real data.
    match_threshold: float = 0.80
    review_threshold: float = 0.20
    candidates_shown: int = 3
    max_chance: float = DEFAULT_MAX_CHANCE  # the name + zip + birth year rule's rarity bar (see rules)

    def __post_init__(self) -> None:
        if not 0.0 < self.review_threshold <= self.match_threshold <= 1.0:
            raise ValueError("need 0 < review_threshold <= match_threshold <= 1")


@dataclass(frozen=True)
class ScoredPairs:
    """A batch's candidate pairs with their comparison levels and scores (sorted by person)."""

    people: Encoded
    record: I32
    voter: I32
    levels: Levels
    log2_odds: F64  # prior + match weight: the pair's own log2 posterior odds
    probability: F64  # posterior of the pair's voter among the person's candidates
    on_file: F64  # per person: posterior that one of the candidates is them
    oversize_blocks: int


class Matcher:
    def __init__(
        self,
        index: VoterIndex,
        model: LinkageModel,
        config: MatchConfig | None = None,
        comparer: Comparer | None = None,
    ) -> None:
        if model.n_voters != index.n_voters:
            # The prior is per voter: a model trained on another file size would mis-state it.
            model = LinkageModel(model.m, model.u, model.match_rate, index.n_voters)
        self.index = index
        self.model = model
        self.config = config or MatchConfig()
        self.comparer = comparer or Comparer(index)
        self._prior = model.prior_log2_odds()

    def score(
        self, records: Sequence[PersonRecord], rejected: Mapping[str, Collection[str]] | None = None
    ) -> ScoredPairs:
        """Candidates, comparison levels and posteriors; `rejected` maps record ids to voter ids to leave out."""
        people = self.index.encode(records)
        pairs = self.index.candidates(people)
        record, voter = pairs.record, pairs.voter
        if rejected:
            record, voter = self._without_rejected(records, record, voter, rejected)
        levels = self.comparer.compare(people, record, voter)
        log2_odds = self._prior + match_weights(self.model, self.index, levels, voter)
        outside = outside_odds(self.model, self.index, people)
        probability, on_file = posteriors(log2_odds, record, len(records), outside)
        return ScoredPairs(people, record, voter, levels, log2_odds, probability, on_file, pairs.oversize_blocks)

    def _without_rejected(
        self, records: Sequence[PersonRecord], record: I32, voter: I32, rejected: Mapping[str, Collection[str]]
    ) -> tuple[I32, I32]:
        """Drop the pairs a reviewer turned down (only the rows of people with decisions are looked at)."""
        rows = [i for i, r in enumerate(records) if rejected.get(r.record_id)]
        if not rows:
            return record, voter
        keep = np.ones(record.shape[0], dtype=bool)
        for pair in np.flatnonzero(np.isin(record, rows)).tolist():
            if self.index.voter_id(int(voter[pair])) in rejected[records[int(record[pair])].record_id]:
                keep[pair] = False
        return record[keep], voter[keep]

    def link(
        self, records: Sequence[PersonRecord], rejected: Mapping[str, Collection[str]] | None = None
    ) -> list[LinkResult]:
        """One result per record, in order. `rejected`: record id → voter ids a reviewer turned down."""
        if not records:
            return []
        scored = self.score(records, rejected)
        config = self.config
        n = len(records)
        rule_pair, rule_method = deterministic_links(
            config.rules, scored.levels, scored.record, scored.voter, self.index, n, config.max_chance
        )
        # Pairs by person, best posterior first; the top few of each are shown.
        # One float key (person, then falling probability) sorts ~5x faster than a two-key lexsort.
        order = np.argsort(scored.record + (1.0 - scored.probability) * 0.5, kind="stable")
        owners = scored.record[order]
        first = np.searchsorted(owners, np.arange(n + 1))
        rank = np.arange(order.shape[0]) - first[owners]
        shown = order[rank < config.candidates_shown]
        shown_first = np.searchsorted(scored.record[shown], np.arange(n + 1)).tolist()
        ids = [b.decode() for b in self.index.voter_id_bytes[scored.voter[shown]].tolist()]
        probabilities = scored.probability[shown].tolist()
        weights = scored.log2_odds[shown].tolist()
        on_file = scored.on_file.tolist()
        rule_pairs = rule_pair.tolist()
        results: list[LinkResult] = []
        for i, record in enumerate(records):
            lo, hi = shown_first[i], shown_first[i + 1]
            candidates = tuple(Candidate(ids[j], probabilities[j], weights[j]) for j in range(lo, hi))
            pair = rule_pairs[i]
            if pair >= 0:
                linked = self.index.voter_id(int(scored.voter[pair]))
                probability, weight = float(scored.probability[pair]), float(scored.log2_odds[pair])
                results.append(
                    LinkResult(
                        record.record_id, Status.MATCHED, linked, rule_method[i], probability, weight, candidates
                    )
                )
                continue
            best = candidates[0] if candidates else None
            voter_id: str | None = None
            if best is not None and best.probability >= config.match_threshold:
                status, voter_id, method = Status.MATCHED, best.voter_id, Method.PROBABILISTIC
            elif best is not None and on_file[i] >= config.review_threshold:
                status, voter_id, method = Status.AMBIGUOUS, None, Method.PROBABILISTIC
            else:
                status, voter_id, method = Status.UNMATCHED, None, Method.NONE
            results.append(
                LinkResult(
                    record.record_id, status, voter_id, method, best.probability if best else 0.0,
                    best.match_weight if best else None, candidates,
                )
            )  # fmt: skip
        return results
