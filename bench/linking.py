"""bench/linking: accuracy and speed of identity matching against a simulated voter file.

    .venv/bin/python -m bench.linking --voters 1000000 [--seeds 101 102 103] [--signups 20000]

Per seed: a world of about --voters voters (its own seed), the voter file from
streams.simulation.identities (emails and phones HMAC-hashed as at ingest), signups and email-list
people with the default noise mix and known truth. The model is trained on the people themselves
(unsupervised, as in production), then they are linked in micro-batches of --batch people.

Reported: the share linked, precision (linked to the right voter / linked), recall (linked to the
right voter / people who are on the file), the share left for review (ambiguous), and for review
the share whose true voter is among the candidates shown; a bound on recall: the share of on-file
people the file can find at all (their email or phone is on file for their voter, or they gave a
family name with a zip, address or birth year), and the group `email_only` (no family name, address or
phone: only their email can find them, so their bound is how many of those emails the file holds);
links/s (the whole `Matcher.link` call, per micro-batch, one core; also per CPU-second, steadier
on a shared machine); index build time, its size in arrays and the process's RSS growth while
building it (meaningful for the first seed only: later builds reuse memory the earlier ones freed).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.linking import LinkResult, Matcher, Method, PersonRecord, Status, VoterColumns, VoterIndex, train
from models.linking.matcher import MatchConfig
from streams.pii import PiiHasher
from streams.simulation.identities import IdentitySimulator, SimPerson
from streams.simulation.world import build_world

_SECRET = b"bench-linking-secret"
VOTERS_PER_PRECINCT = 800  # Ohio: about 8M registered voters in about 8,900 precincts


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def hashed_record(person: SimPerson, hasher: PiiHasher) -> PersonRecord:
    """What the matcher sees of a person: email and phone hashed as at ingest."""
    p = person
    email, phone = hasher.email(p.email) or None, hasher.phone(p.phone) or None
    return PersonRecord(p.record_id, p.given_name, p.family_name, email, phone, p.address_line1, p.zip5, p.birth_year)


def hashed_records(people: Sequence[SimPerson], hasher: PiiHasher) -> list[PersonRecord]:
    return [hashed_record(p, hasher) for p in people]


@dataclass
class Accuracy:
    people: int = 0
    on_file: int = 0
    matched: int = 0
    correct: int = 0
    ambiguous: int = 0
    ambiguous_with_truth: int = 0
    reachable: int = 0  # on-file people the file can find at all (see `reachable`)

    def add(self, person: SimPerson, result: LinkResult, reachable: bool) -> None:
        self.people += 1
        self.on_file += person.true_voter_id is not None
        self.reachable += reachable
        if result.status is Status.MATCHED:
            self.matched += 1
            self.correct += result.voter_id == person.true_voter_id
        elif result.status is Status.AMBIGUOUS:
            self.ambiguous += 1
            self.ambiguous_with_truth += any(c.voter_id == person.true_voter_id for c in result.candidates)

    @property
    def precision(self) -> float:
        return self.correct / self.matched if self.matched else float("nan")

    @property
    def recall(self) -> float:
        return self.correct / self.on_file if self.on_file else float("nan")

    @property
    def bound(self) -> float:
        return self.reachable / self.on_file if self.on_file else float("nan")

    @property
    def review_share(self) -> float:
        return self.ambiguous / self.people if self.people else float("nan")


@dataclass
class SeedRun:
    seed: int
    voters: int
    build_s: float
    index_mib: float
    rss_growth_mib: float
    train_s: float
    match_rate: float
    links_per_s: float
    links_per_cpu_s: float  # the machine is shared: CPU time is the steadier measure
    overall: Accuracy
    by_source: dict[str, Accuracy]
    by_noise: dict[str, Accuracy]
    by_method: Counter[str]
    wrong_by_method: Counter[str]
    sweep: dict[float, tuple[float, float]]  # signups: match threshold → (precision, recall)


SWEEP = (0.5, 0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class FileContacts:
    """The voter file's email and phone hashes by voter id, to tell which people it can find."""

    email: dict[str, str]
    phone: dict[str, str]

    def reachable(self, person: SimPerson, record: PersonRecord) -> bool:
        """On file, and either a contact the file holds for their voter or a family name with something
        to place it (zip, address or birth year): without either, nothing in the file points to them."""
        voter = person.true_voter_id
        if voter is None:
            return False
        contact = (record.email_hash is not None and self.email.get(voter) == record.email_hash) or (
            record.phone_hash is not None and self.phone.get(voter) == record.phone_hash
        )
        placed = record.zip5 or record.address_line1 or record.birth_year is not None
        return contact or (bool(record.family_name) and bool(placed))


def email_only(record: PersonRecord) -> bool:
    """Only an email and a given name (perhaps a zip) to go on."""
    return not (record.family_name or record.address_line1 or record.phone_hash) and record.email_hash is not None


def threshold_sweep(people: Sequence[SimPerson], results: Sequence[LinkResult]) -> dict[float, tuple[float, float]]:
    """Signup precision and recall had the match threshold been t (rules link whatever t is)."""
    pairs = [(p, r) for p, r in zip(people, results, strict=True) if p.record_id.startswith("S")]
    on_file = sum(p.true_voter_id is not None for p, _ in pairs)
    sweep = {}
    for t in SWEEP:
        matched = correct = 0
        for p, r in pairs:
            if r.status is Status.MATCHED and r.method is not Method.PROBABILISTIC:
                voter: str | None = r.voter_id
            elif r.candidates and r.candidates[0].probability >= t:
                voter = r.candidates[0].voter_id
            else:
                continue
            matched += 1
            correct += voter == p.true_voter_id
        sweep[t] = (correct / matched if matched else float("nan"), correct / on_file if on_file else float("nan"))
    return sweep


def run_seed(seed: int, voters: int, signups: int, email_people: int, batch: int, config: MatchConfig) -> SeedRun:
    precincts = max(1, min(9999, round(voters / VOTERS_PER_PRECINCT)))
    world = build_world(seed, precincts=precincts, counties=max(1, min(88, precincts // 12)), regions=4,
                        voters_per_precinct=round(voters / precincts))  # fmt: skip
    simulator = IdentitySimulator(world)
    hasher = PiiHasher(_SECRET, cache_size=0)
    file = simulator.voter_file
    columns = VoterColumns(
        file.voter_id, file.given_name, file.family_name, file.birth_year, file.zip5, file.address_line1,
        [hasher.email(e) or None for e in file.email], [hasher.phone(p) or None for p in file.phone],
    )  # fmt: skip
    gc.collect()
    before = rss_mib()
    started = time.perf_counter()
    index = VoterIndex.build(columns)
    build_s = time.perf_counter() - started
    gc.collect()
    rss_growth = rss_mib() - before
    contacts = FileContacts(
        {v: e for v, e in zip(columns.voter_id, columns.email_hash, strict=True) if e},
        {v: p for v, p in zip(columns.voter_id, columns.phone_hash, strict=True) if p},
    )
    del columns
    people = simulator.signups(signups, seed) + simulator.email_people(email_people, seed)
    records = hashed_records(people, hasher)
    started = time.perf_counter()
    report = train(index, records)
    train_s = time.perf_counter() - started
    matcher = Matcher(index, report.model, config, comparer=None)
    matcher.link(records[:batch])  # warm-up: first-time string comparisons fill the cache
    matcher = Matcher(index, report.model, config, comparer=matcher.comparer)
    results: list[LinkResult] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(records), batch):
        results.extend(matcher.link(records[start : start + batch]))
    link_s = time.perf_counter() - started
    link_cpu_s = time.process_time() - cpu_started
    overall = Accuracy()
    by_source: defaultdict[str, Accuracy] = defaultdict(Accuracy)
    by_noise: defaultdict[str, Accuracy] = defaultdict(Accuracy)
    by_method: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    for person, record, result in zip(people, records, results, strict=True):
        reachable = contacts.reachable(person, record)
        overall.add(person, result, reachable)
        by_source["signup" if person.record_id.startswith("S") else "email list"].add(person, result, reachable)
        for tag in (*person.noise, *(["email_only"] if email_only(record) else [])):
            by_noise[tag].add(person, result, reachable)
        if result.status is Status.MATCHED:
            by_method[result.method.value] += 1
            wrong[result.method.value] += result.voter_id != person.true_voter_id
    return SeedRun(
        seed, index.n_voters, build_s, index.nbytes / 2**20, rss_growth, train_s, report.model.match_rate,
        len(records) / link_s, len(records) / link_cpu_s, overall, dict(by_source), dict(by_noise), by_method, wrong,
        threshold_sweep(people, results),
    )  # fmt: skip


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


def print_run(run: SeedRun) -> None:
    print(
        f"\nseed {run.seed}: {run.voters:,} voters; index built in {run.build_s:.1f} s, "
        f"arrays {run.index_mib:.0f} MiB, RSS +{run.rss_growth_mib:.0f} MiB; trained in {run.train_s:.1f} s "
        f"(match rate {run.match_rate:.3f}); {run.links_per_s:,.0f} links/s, "
        f"{run.links_per_cpu_s:,.0f} per CPU-second"
    )
    header = ("group", "people", "on file", "linked", "precision", "recall", "bound", "review", "rev∋true")
    print(f"  {header[0]:24s} " + " ".join(f"{h:>9s}" for h in header[1:]))
    rows = [("all", run.overall), *sorted(run.by_source.items()), *sorted(run.by_noise.items())]
    for name, acc in rows:
        with_truth = acc.ambiguous_with_truth / acc.ambiguous if acc.ambiguous else float("nan")
        print(
            f"  {name:24s} {acc.people:9d} {acc.on_file:9d} {_pct(acc.matched / acc.people):>9s} "
            f"{_pct(acc.precision):>9s} {_pct(acc.recall):>9s} {_pct(acc.bound):>9s} "
            f"{_pct(acc.review_share):>9s} {_pct(with_truth):>9s}"
        )
    methods = ", ".join(f"{m} {n} ({run.wrong_by_method[m]} wrong)" for m, n in run.by_method.most_common())
    print(f"  matched by: {methods}")
    sweep = "; ".join(f"{t}: {_pct(p).strip()} / {_pct(r).strip()}" for t, (p, r) in run.sweep.items())
    print(f"  signups, precision / recall by match threshold: {sweep}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.linking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    parser.add_argument("--signups", type=int, default=20_000)
    parser.add_argument("--email-people", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000, help="people per micro-batch")
    parser.add_argument("--match-threshold", type=float, default=MatchConfig.match_threshold)
    parser.add_argument("--review-threshold", type=float, default=MatchConfig.review_threshold)
    args = parser.parse_args(argv)
    config = MatchConfig(match_threshold=args.match_threshold, review_threshold=args.review_threshold)
    runs = []
    for seed in args.seeds:
        run = run_seed(seed, args.voters, args.signups, args.email_people, args.batch, config)
        print_run(run)
        runs.append(run)
    if len(runs) > 1:
        print("\nmedian over seeds:")
        summary: dict[str, Callable[[SeedRun], float]] = {
            "precision": lambda r: r.overall.precision,
            "recall": lambda r: r.overall.recall,
            "review share": lambda r: r.overall.review_share,
            "signup precision": lambda r: r.by_source["signup"].precision,
            "signup recall": lambda r: r.by_source["signup"].recall,
            "signup review": lambda r: r.by_source["signup"].review_share,
            "signup bound": lambda r: r.by_source["signup"].bound,
            "email precision": lambda r: r.by_source["email list"].precision,
            "email recall": lambda r: r.by_source["email list"].recall,
            "email bound": lambda r: r.by_source["email list"].bound,
            "links/s": lambda r: r.links_per_s,
            "links/CPU-s": lambda r: r.links_per_cpu_s,
            "index build s": lambda r: r.build_s,
        }
        for name, get in summary.items():
            print(f"  {name:18s} {statistics.median(get(r) for r in runs):,.4f}")
        for t in SWEEP:
            precision = statistics.median(r.sweep[t][0] for r in runs)
            recall = statistics.median(r.sweep[t][1] for r in runs)
            print(f"  signups at match threshold {t}: precision {_pct(precision)}, recall {_pct(recall)}")
        # Later seeds reuse memory the first one freed, so only the first growth is a fresh-process figure.
        print(f"  RSS growth while building the first index: {runs[0].rss_growth_mib:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
