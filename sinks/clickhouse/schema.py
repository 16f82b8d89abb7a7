"""Groundswell's tables, materialized views and metric views: the one definition of the warehouse."""

from __future__ import annotations

from dataclasses import dataclass

from sinks.clickhouse.tables import MaterializedView, Projection, Table, View

TS = "DateTime64(3, 'UTC')"
# Raw tables use plain String: LowCardinality halved insert throughput from JSONEachRow (bench/ingest,
# docs/benchmarks.md), and repeated values compress well anyway.
LC = "String"
GEO_COLUMNS = (("precinct_id", LC), ("county", LC), ("region", LC), ("state", LC))
KAFKA_COLUMNS = (("kafka_partition", "UInt32"), ("kafka_offset", "UInt64"))
INGESTED = (("ingested_at", f"{TS} DEFAULT now64(3)"),)

RAW_CANVASS = Table(
    "raw_canvass",
    (
        ("event_id", "UUID"), ("occurred_at", TS), ("received_at", TS), ("source_system", LC),
        ("source_record_id", "String"), ("voter_id", "String"), ("household_id", "String"), *GEO_COLUMNS,
        ("canvasser_id", "String"), ("team_id", "String"), ("turf_id", "String"), ("list_id", "String"),
        ("contact_type", LC), ("result", LC), ("support_level", "Nullable(UInt8)"),
        ("responses", "Array(Tuple(question String, answer String))"),
        ("gps_lat", "Nullable(Float64)"), ("gps_lon", "Nullable(Float64)"), ("gps_accuracy_m", "Nullable(Float64)"),
        *KAFKA_COLUMNS, *INGESTED,
    ),
    order_by="(state, region, county, precinct_id, occurred_at)",
    partition_by="toYYYYMM(occurred_at)",
)  # fmt: skip

RAW_SIGNUPS = Table(
    "raw_signups",
    (
        ("event_id", "UUID"), ("occurred_at", TS), ("received_at", TS), ("source_system", LC),
        ("source_record_id", "String"), ("action_type", LC), ("email_hash", "String"), ("phone_hash", "String"),
        ("zip5", LC), ("birth_year", "Nullable(UInt16)"), ("utm_source", LC), ("utm_medium", LC),
        ("utm_campaign", LC), ("referrer_code", "String"), ("refcode", "String"), ("sms_opt_in", "Nullable(Bool)"),
        ("rsvp_status", LC), ("attended", "Nullable(Bool)"), *GEO_COLUMNS, ("geo_resolution", LC),
        *KAFKA_COLUMNS, *INGESTED,
    ),
    order_by="(state, region, county, precinct_id, occurred_at)",
    partition_by="toYYYYMM(occurred_at)",
)  # fmt: skip

RAW_EMAIL = Table(
    "raw_email",
    (
        ("event_id", "UUID"), ("occurred_at", TS), ("received_at", TS), ("source_system", LC),
        ("source_record_id", "String"), ("kind", LC), ("mailing_id", LC), ("variant_id", LC),
        ("email_hash", "String"), ("voter_id", "String"), ("link_id", "String"), ("amount_cents", "Nullable(UInt64)"),
        ("refcode", "String"), *GEO_COLUMNS, ("geo_resolution", LC), *KAFKA_COLUMNS, *INGESTED,
    ),
    order_by="(state, region, county, precinct_id, occurred_at)",
    partition_by="toYYYYMM(occurred_at)",
)  # fmt: skip

REJECTED_EVENTS = Table(
    "rejected_events",
    (
        ("source_topic", LC), ("kafka_partition", "UInt32"), ("kafka_offset", "UInt64"), ("kafka_key", "String"),
        ("received_at", TS), ("reason_code", LC), ("reason_text", "String"), ("event_id", "String"),
        ("raw", "String"), ("rejected_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="(source_topic, kafka_partition, kafka_offset)",
    partition_by="toYYYYMM(rejected_at)",
)  # fmt: skip

# Exactly-once batch state (BEFORE/AFTER per consumer group, topic and partition). On a cluster the
# state belongs in Keeper (linearizable), as ClickHouse's own Kafka sink keeps it.
INGEST_BATCH_STATE = Table(
    "ingest_batch_state",
    (
        ("state_key", "String"), ("consumer_group", "String"), ("topic", "String"), ("partition", "UInt32"),
        ("first_offset", "UInt64"), ("last_offset", "UInt64"), ("state", "Enum8('BEFORE' = 1, 'AFTER' = 2)"),
        ("version", "UInt64"), ("updated_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="state_key",
    engine="ReplacingMergeTree(version)",
    distributed=False,
)  # fmt: skip

SCHEMA_MIGRATIONS = Table(
    "schema_migrations",
    (
        ("version", "UInt32"), ("description", "String"), ("checksum", "String"),
        ("applied_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="version",
    distributed=False,
)


# --- Voter file ---------------------------------------------------------------------------------

# One row per voter; a later load replaces a voter's row (highest `version` wins: read with FINAL or
# argMax). Sharded by voter_id on a cluster, so each voter's versions meet on one shard.
VOTERS = Table(
    "voters",
    (
        ("voter_id", "String"), ("household_id", "String"), ("precinct_id", "String"), ("county", "String"),
        ("region", "String"), ("state", "String"), ("given_name", "String"), ("family_name", "String"),
        ("birth_year", "Nullable(UInt16)"), ("gender", "LowCardinality(String)"), ("party", "LowCardinality(String)"),
        ("registration_date", "Nullable(Date32)"), ("vote_history", "Array(LowCardinality(String))"),
        ("address_line1", "String"), ("zip5", "String"), ("email_hash", "String"), ("phone_hash", "String"),
        ("load_id", "String"), ("version", "UInt64"), ("loaded_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="voter_id",
    engine="ReplacingMergeTree(version)",
    sharding_key="cityHash64(voter_id)",
)  # fmt: skip

VOTER_FILE_LOADS = Table(
    "voter_file_loads",
    (
        ("load_id", "String"), ("file_name", "String"), ("file_sha256", "String"), ("rows_read", "UInt64"),
        ("rows_loaded", "UInt64"), ("rows_rejected", "UInt64"), ("rejected_by_reason", "Map(String, UInt64)"),
        ("ignored_columns", "Array(String)"), ("started_at", TS), ("finished_at", TS),
    ),
    order_by="(started_at, load_id)",
)  # fmt: skip


# --- Models (issue #3) ------------------------------------------------------------------------------

# Immutable model versions: `version` is the sha256 of the artifact's bytes, so a push of the same
# artifact is the same row (and the same insert token).
MODEL_VERSIONS = Table(
    "model_versions",
    (
        ("version", "String"), ("model", "String"), ("pushed_at", f"{TS} DEFAULT now64(3)"), ("pushed_by", "String"),
        ("manifest", "String"), ("artifact", "String"), ("size_bytes", "UInt64"), ("feature_fingerprint", "String"),
        ("gate_report", "String"),
    ),
    order_by="(model, version)",
    engine="ReplacingMergeTree",
    sharding_key="cityHash64(version)",
)  # fmt: skip

# Alias moves (champion, challenger, shadow), append-only: the current target of an alias is the
# version of its highest `seq`; an empty version clears the alias. The history is what rollback reads.
MODEL_ALIASES = Table(
    "model_aliases",
    (
        ("model", "String"), ("alias", "LowCardinality(String)"), ("version", "String"), ("seq", "UInt64"),
        ("moved_at", f"{TS} DEFAULT now64(3)"), ("moved_by", "String"), ("reason", "String"),
    ),
    order_by="(model, alias, seq)",
    sharding_key="cityHash64(model)",
)  # fmt: skip

# Every score given: in the stream one per (event, model version), keyed by the event, so a replay
# after a crash replaces rather than adds (read with FINAL); a bulk rescore has the zero event_id
# and replaces the version's previous bulk score of that voter.
VOTER_SCORES = Table(
    "voter_scores",
    (
        ("voter_id", "String"), ("model", "String"), ("version", "String"), ("alias", "LowCardinality(String)"),
        ("event_id", "UUID"), ("score", "Float32"), ("scored_at", TS), ("source", "LowCardinality(String)"),
    ),
    order_by="(voter_id, model, version, event_id)",
    engine="ReplacingMergeTree(scored_at)",
    sharding_key="cityHash64(voter_id)",
)  # fmt: skip

# The latest score of each voter under each model version (fed by a materialized view).
VOTER_SCORES_LATEST = Table(
    "voter_scores_latest",
    (
        ("model", "String"), ("version", "String"), ("voter_id", "String"), ("score", "Float32"),
        ("scored_at", TS), ("source", "LowCardinality(String)"),
    ),
    order_by="(model, version, voter_id)",
    engine="ReplacingMergeTree(scored_at)",
    sharding_key="cityHash64(voter_id)",
)  # fmt: skip

VOTER_SCORES_LATEST_VIEW = MaterializedView(
    "mv_voter_scores_latest",
    source="voter_scores",
    target="voter_scores_latest",
    select="SELECT model, version, voter_id, score, scored_at, source FROM {source}",
)

MODEL_METRICS = Table(
    "model_metrics",
    (
        ("model", "String"), ("version", "String"), ("alias", "LowCardinality(String)"),
        ("scope", "LowCardinality(String)"), ("labels", "UInt64"), ("window_labels", "UInt64"),
        ("log_loss", "Float64"), ("brier", "Float64"), ("ece", "Float64"), ("auc", "Float64"),
        ("worker", "String"), ("recorded_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="(model, version, scope, recorded_at)",
    partition_by="toYYYYMM(recorded_at)",
)  # fmt: skip

# Checkpoints of the online learners, with the Kafka positions they have learned up to.
MODEL_STATE = Table(
    "model_state",
    (
        ("model", "String"), ("alias", "LowCardinality(String)"), ("base_version", "String"),
        ("consumer_group", "String"), ("positions", "Map(String, UInt64)"), ("labels", "UInt64"),
        ("state", "String"), ("saved_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="(model, alias, consumer_group, saved_at)",
    distributed=False,
)  # fmt: skip


# --- Access (issue #6) ------------------------------------------------------------------------------

# API tokens, stored as SHA-256 digests only. A revocation is a newer version of the row.
API_TOKENS = Table(
    "api_tokens",
    (
        ("token_id", "String"), ("name", "String"), ("role", "LowCardinality(String)"), ("regions", "Array(String)"),
        ("token_sha256", "String"), ("created_at", TS), ("created_by", "String"), ("expires_at", f"Nullable({TS})"),
        ("revoked_at", f"Nullable({TS})"), ("version", "UInt64"),
    ),
    order_by="token_id",
    engine="ReplacingMergeTree(version)",
    sharding_key="cityHash64(token_id)",
)  # fmt: skip


# --- Trends (issue #4) ------------------------------------------------------------------------------

# One row per flag episode (newest version wins): the agent upserts on flag_id as an episode is
# raised, updated and closed.
TREND_FLAGS = Table(
    "trend_flags",
    (
        ("flag_id", "String"), ("status", "LowCardinality(String)"), ("metric", "LowCardinality(String)"),
        ("level", "LowCardinality(String)"), ("unit_id", "String"), ("region", "String"),
        ("direction", "LowCardinality(String)"), ("effect", "Float64"), ("effect_kind", "LowCardinality(String)"),
        ("baseline", "Float64"), ("observed", "Float64"), ("volume", "Float64"), ("z_score", "Float64"),
        ("p_value", "Float64"), ("statistic", "Float64"), ("threshold", "Float64"), ("onset", TS),
        ("raised_at", TS), ("window_start", TS), ("window_end", TS), ("updated_at", f"{TS} DEFAULT now64(3)"),
        ("version", "UInt64"),
    ),
    order_by="flag_id",
    engine="ReplacingMergeTree(version)",
    sharding_key="cityHash64(flag_id)",
)  # fmt: skip

# The detectors' state (JSON, megabytes for thousands of precincts), saved once per agent tick; merges
# keep only the newest row per metric.
TREND_STATE = Table(
    "trend_state",
    (
        ("metric", "String"), ("last_window_end", TS), ("state", "String"), ("saved_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="metric",
    engine="ReplacingMergeTree(last_window_end)",
    distributed=False,
)  # fmt: skip


# --- Aggregates --------------------------------------------------------------------------------

COUNTER = "SimpleAggregateFunction(sum, UInt64)"
UNIQUE = "AggregateFunction(uniqExact, String)"


@dataclass(frozen=True)
class Measure:
    name: str
    ctype: str  # COUNTER or UNIQUE

    @property
    def merge(self) -> str:
        return f"sum({self.name})" if self.ctype == COUNTER else f"uniqExactMerge({self.name})"


MEASURES = (
    Measure("attempts", COUNTER), Measure("doors", UNIQUE), Measure("contacts", COUNTER), Measure("ids", COUNTER),
    Measure("supporters", COUNTER), Measure("undecided", COUNTER), Measure("opposed", COUNTER),
    Measure("refusals", COUNTER), Measure("bad_data", COUNTER),
    Measure("signups", COUNTER), Measure("signups_zip_resolved", COUNTER), Measure("signups_unassigned", COUNTER),
    Measure("email_sends", COUNTER), Measure("email_bounces_hard", COUNTER), Measure("email_bounces_soft", COUNTER),
    Measure("email_human_opens", UNIQUE), Measure("email_machine_opens", COUNTER), Measure("email_clicks", COUNTER),
    Measure("email_unique_clicks", UNIQUE), Measure("email_actions", COUNTER), Measure("email_unsubscribes", COUNTER),
    Measure("email_spam_complaints", COUNTER), Measure("donations", COUNTER), Measure("donations_cents", COUNTER),
)  # fmt: skip

WINDOWS = ("15m", "1h", "1d")
GEO_KEYS = ("state", "region", "county", "precinct_id")


def window_expr(window: str, timezone: str) -> str:
    if window == "15m":
        return "toDateTime(toStartOfFifteenMinutes(occurred_at), 'UTC')"
    if window == "1h":
        return "toDateTime(toStartOfHour(occurred_at), 'UTC')"
    if window == "1d":
        return f"toDateTime(toStartOfDay(occurred_at, '{timezone}'), '{timezone}')"
    raise ValueError(f"unknown window {window!r}; known: {WINDOWS}")


def aggregate_table(window: str, timezone: str) -> Table:
    tz = timezone if window == "1d" else "UTC"
    return Table(
        f"agg_precinct_{window}",
        (
            *((k, "LowCardinality(String)") for k in GEO_KEYS),
            ("window_start", f"DateTime('{tz}')"),
            *((m.name, m.ctype) for m in MEASURES),
        ),
        order_by=f"({', '.join(GEO_KEYS)}, window_start)",
        engine="AggregatingMergeTree",
        partition_by="toYYYYMM(window_start)",
    )


# What each raw stream contributes to the aggregates. Columns a stream does not list default to
# zero (or an empty uniqExact state), which merges as nothing.
HOUSEHOLD = "if(household_id != '', household_id, if(voter_id != '', voter_id, toString(event_id)))"
RECIPIENT = (
    "concat(mailing_id, ':', if(email_hash != '', email_hash, if(voter_id != '', voter_id, toString(event_id))))"
)
CONTRIBUTIONS: dict[str, dict[str, str]] = {
    "raw_canvass": {
        "attempts": "count()",
        "doors": f"uniqExactStateIf({HOUSEHOLD}, contact_type = 'walk')",
        "contacts": "countIf(result = 'canvassed')",
        "ids": "countIf(support_level IS NOT NULL)",
        "supporters": "countIf(support_level IN (1, 2))",
        "undecided": "countIf(support_level = 3)",
        "opposed": "countIf(support_level IN (4, 5))",
        "refusals": "countIf(result = 'refused')",
        "bad_data": "countIf(result IN ('moved', 'deceased', 'wrong_number', 'disconnected'))",
    },
    "raw_signups": {
        "signups": "count()",
        "signups_zip_resolved": "countIf(geo_resolution = 'zip')",
        "signups_unassigned": "countIf(geo_resolution = 'unassigned')",
    },
    "raw_email": {
        "email_sends": "countIf(kind = 'send')",
        "email_bounces_hard": "countIf(kind = 'bounce_hard')",
        "email_bounces_soft": "countIf(kind = 'bounce_soft')",
        "email_human_opens": f"uniqExactStateIf({RECIPIENT}, kind = 'open')",
        "email_machine_opens": "countIf(kind = 'machine_open')",
        "email_clicks": "countIf(kind = 'click')",
        "email_unique_clicks": f"uniqExactStateIf({RECIPIENT}, kind = 'click')",
        "email_actions": "countIf(kind = 'action')",
        "email_unsubscribes": "countIf(kind = 'unsubscribe')",
        "email_spam_complaints": "countIf(kind = 'spam_complaint')",
        "donations": "countIf(kind = 'donation')",
        "donations_cents": "toUInt64(sumIf(ifNull(amount_cents, 0), kind = 'donation'))",
    },
}


def aggregate_view(source: str, timezone: str) -> MaterializedView:
    """Raw stream → 15-minute precinct aggregates: the only view that reads raw rows."""
    measures = ",\n       ".join(f"{expr} AS {name}" for name, expr in CONTRIBUTIONS[source].items())
    keys = ", ".join(GEO_KEYS)
    return MaterializedView(
        name=f"mv_{source}_15m",
        source=source,
        target="agg_precinct_15m",
        select=(
            f"SELECT {keys}, {window_expr('15m', timezone)} AS window_start,\n       {measures}\n"
            f"FROM {{source}}\nGROUP BY {keys}, window_start"
        ),
    )


def rollup_view(window: str, timezone: str) -> MaterializedView:
    """15-minute aggregates → hourly or daily ones, from the block each insert adds to the 15-minute table.

    Cascading keeps the raw rows to one GROUP BY per insert (three views on the raw tables cost ~40%
    of ingest throughput). Fifteen-minute windows nest in hours and in days of any zone in use today.
    """
    start = {"1h": "toStartOfHour(window_start)", "1d": f"toStartOfDay(window_start, '{timezone}')"}[window]
    tz = timezone if window == "1d" else "UTC"
    merged = ",\n       ".join(
        f"sum({m.name}) AS {m.name}" if m.ctype == COUNTER else f"uniqExactMergeState({m.name}) AS {m.name}"
        for m in MEASURES
    )
    keys = ", ".join(GEO_KEYS)
    return MaterializedView(
        name=f"mv_agg_precinct_15m_{window}",
        source="agg_precinct_15m",
        target=f"agg_precinct_{window}",
        select=(
            f"SELECT {keys}, toDateTime({start}, '{tz}') AS window_start,\n       {merged}\n"
            f"FROM {{source}}\nGROUP BY {keys}, window_start"
        ),
    )


# State- and region-wide time ranges read every granule of an aggregate sorted by precinct; the same
# rows sorted by time first let them read only the range (bench/dashboard, docs/benchmarks.md).
WINDOW_PROJECTIONS = tuple(
    Projection(f"agg_precinct_{window}", "by_window_start", "SELECT * ORDER BY window_start")
    for window in ("15m", "1h")
)


# --- Metrics: the one place where rates are defined -------------------------------------------

LEVELS: dict[str, tuple[str, ...]] = {
    "precinct": ("state", "region", "county", "precinct_id"),
    "county": ("state", "region", "county"),
    "region": ("state", "region"),
    "state": ("state",),
}
LEVEL_ID_COLUMN = {"precinct": "precinct_id", "county": "county", "region": "region", "state": "state"}

DERIVED_METRICS: dict[str, str] = {
    "contact_rate": "if(attempts = 0, NULL, contacts / attempts)",
    "support_rate": "if(ids = 0, NULL, supporters / ids)",
    "undecided_share": "if(ids = 0, NULL, undecided / ids)",
    "refusal_rate": "if(attempts = 0, NULL, refusals / attempts)",
    "bad_data_rate": "if(attempts = 0, NULL, bad_data / attempts)",
    "email_delivered": "toUInt64(greatest(toInt64(email_sends) - email_bounces_hard - email_bounces_soft, 0))",
    "email_open_rate": "if(email_delivered = 0, NULL, email_human_opens / email_delivered)",
    "email_click_rate": "if(email_delivered = 0, NULL, email_unique_clicks / email_delivered)",
    "email_unsubscribe_rate": "if(email_delivered = 0, NULL, email_unsubscribes / email_delivered)",
    "dollars_per_1000_sent": "if(email_sends = 0, NULL, donations_cents / 100 / email_sends * 1000)",
}


def metrics_view(level: str, window: str) -> View:
    keys = ", ".join(LEVELS[level])
    merged = ",\n       ".join(f"{m.merge} AS {m.name}" for m in MEASURES)
    derived = ",\n       ".join(f"{expr} AS {name}" for name, expr in DERIVED_METRICS.items())
    return View(
        name=f"metrics_{level}_{window}",
        select=(
            f"SELECT *,\n       {derived}\nFROM (\n"
            f"SELECT {keys}, window_start,\n       {merged}\n"
            f"FROM {{db}}.agg_precinct_{window}\nGROUP BY {keys}, window_start)"
        ),
    )


RAW_TABLES = {"canvass.knock": RAW_CANVASS, "digital.signup": RAW_SIGNUPS, "email.event": RAW_EMAIL}


# --- Linking people (issue #5) ----------------------------------------------------------------------

# PII: a signup's name and address as typed (trimmed), for the matcher and reviewers only. Written by
# the ingest batch that writes the signup's raw row, with the same token (suffixed), before it.
# Statisticians and admins may read it through SQL; regional tokens have no SQL (docs/data-dictionary.md).
SIGNUP_IDENTITIES = Table(
    "signup_identities",
    (
        ("event_id", "UUID"), ("given_name", "String"), ("family_name", "String"), ("address_line1", "String"),
        ("zip5", "String"), ("birth_year", "Nullable(UInt16)"), ("email_hash", "String"), ("phone_hash", "String"),
        *KAFKA_COLUMNS, *INGESTED,
    ),
    order_by="event_id",
    sharding_key="cityHash64(event_id)",
)  # fmt: skip

LINK_COLUMNS = (
    ("record_kind", "LowCardinality(String)"), ("record_id", "String"), ("voter_id", "String"),
    ("status", "LowCardinality(String)"), ("method", "LowCardinality(String)"), ("probability", "Float64"),
    ("match_weight", "Nullable(Float64)"),
    ("candidates", "Array(Tuple(voter_id String, probability Float64, match_weight Float64))"),
    ("decided_by", "LowCardinality(String)"), ("reviewer", "String"), ("generation", "String"),
    ("version", "UInt64"), ("linked_at", TS),
)  # fmt: skip

# One current row per person record (a signup event, or an email address by its hash): the highest
# version wins (read with FINAL). `generation` names the voter-file load and model it was decided under.
LINKS = Table(
    "links",
    LINK_COLUMNS,
    order_by="(record_kind, record_id)",
    engine="ReplacingMergeTree(version)",
    sharding_key="cityHash64(record_id)",
)

# Every change of a record's link (status, voter, method or who decided), append-only.
LINK_HISTORY = Table(
    "link_history",
    (*LINK_COLUMNS, ("previous_voter_id", "String"), ("previous_status", "LowCardinality(String)")),
    order_by="(record_kind, record_id, version)",
    sharding_key="cityHash64(record_id)",
)

# Reviewers' decisions, append-only; the latest decision on a (record, voter) pair is the one in force.
LINK_REVIEWS = Table(
    "link_reviews",
    (
        ("review_id", "String"), ("record_kind", "LowCardinality(String)"), ("record_id", "String"),
        ("voter_id", "String"), ("decision", "LowCardinality(String)"), ("reviewer", "String"),
        ("decided_at", TS), ("recorded_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="(record_kind, record_id, decided_at)",
    sharding_key="cityHash64(record_id)",
)  # fmt: skip

# Linkage models (JSON, models/linking/model.py), one per voter-file load they were trained against.
LINK_MODELS = Table(
    "link_models",
    (
        ("model_id", "String"), ("load_id", "String"), ("people", "UInt64"), ("model", "String"),
        ("trained_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="(load_id, model_id)",
    engine="ReplacingMergeTree",
    sharding_key="cityHash64(load_id)",
)  # fmt: skip

# The linking agent's checkpoint per generation: how far it has read each raw stream (newest wins).
LINK_STATE = Table(
    "link_state",
    (
        ("consumer_group", "String"), ("generation", "String"), ("positions", "Map(String, UInt64)"),
        ("saved_at", TS),
    ),
    order_by="(consumer_group, generation)",
    engine="ReplacingMergeTree(saved_at)",
    distributed=False,
)  # fmt: skip

# Each signup and email event whose person is linked, placed in the linked voter's precinct. Keyed by
# event: when a link changes, the person's events are written again (undone ones with linked = 0), so
# read with FINAL every event counts once, where its person's current link puts it.
LINKED_EVENTS = Table(
    "linked_events",
    (
        ("event_id", "UUID"), ("source", "LowCardinality(String)"), ("record_id", "String"), ("voter_id", "String"),
        ("kind", "LowCardinality(String)"), ("mailing_id", "String"), ("amount_cents", "Nullable(UInt64)"),
        ("occurred_at", TS), *((k, "LowCardinality(String)") for k in GEO_KEYS), ("raw_precinct_id", "String"),
        ("linked", "UInt8"), ("version", "UInt64"),
    ),
    order_by="event_id",
    engine="ReplacingMergeTree(version)",
    sharding_key="cityHash64(event_id)",
)  # fmt: skip

LINKED_RECIPIENT = "concat(mailing_id, ':', record_id)"
LINKED_MEASURES: dict[str, str] = {
    "linked_signups": "countIf(source = 'signup')",
    # Linked signups that the raw aggregates count in another precinct (or an unassigned bucket).
    "linked_signups_moved": "countIf(source = 'signup' AND raw_precinct_id != precinct_id)",
    "linked_email_sends": "countIf(kind = 'send')",
    "linked_email_bounces": "countIf(kind IN ('bounce_hard', 'bounce_soft'))",
    "linked_email_human_opens": f"uniqExactIf({LINKED_RECIPIENT}, kind = 'open')",
    "linked_email_clicks": "countIf(kind = 'click')",
    "linked_email_unique_clicks": f"uniqExactIf({LINKED_RECIPIENT}, kind = 'click')",
    "linked_email_actions": "countIf(kind = 'action')",
    "linked_email_unsubscribes": "countIf(kind = 'unsubscribe')",
    "linked_donations": "countIf(kind = 'donation')",
    "linked_donations_cents": "toUInt64(sumIf(ifNull(amount_cents, 0), kind = 'donation'))",
    "linked_people": "uniqExact(voter_id)",
}


def linked_metrics_view(level: str, window: str, timezone: str) -> View:
    """Linked signups and email engagement by the linked voters' geography, from the current links."""
    keys = ", ".join(LEVELS[level])
    measures = ",\n       ".join(f"{expr} AS {name}" for name, expr in LINKED_MEASURES.items())
    return View(
        name=f"metrics_linked_{level}_{window}",
        select=(
            f"SELECT {keys}, {window_expr(window, timezone)} AS window_start,\n       {measures}\n"
            f"FROM (SELECT * FROM {{db}}.linked_events FINAL WHERE linked = 1)\nGROUP BY {keys}, window_start"
        ),
    )


# The one-profile view: each voter with a linked record, their file identity (PII), their linked
# records, counts of their linked actions and engagement, and the history of those records' links.
PEOPLE_VIEW = View(
    name="people",
    select="""SELECT v.voter_id AS voter_id, v.given_name AS given_name, v.family_name AS family_name,
       v.birth_year AS birth_year, v.address_line1 AS address_line1, v.zip5 AS zip5,
       v.precinct_id AS precinct_id, v.county AS county, v.region AS region, v.state AS state,
       l.records AS records, l.signup_records AS signup_records, l.email_addresses AS email_addresses,
       e.signups AS signups, e.email_sends AS email_sends, e.email_opens AS email_opens,
       e.email_clicks AS email_clicks, e.donations AS donations, e.donations_cents AS donations_cents,
       e.last_activity_at AS last_activity_at, h.match_history AS match_history
FROM (
    SELECT voter_id,
           groupArray(tuple(record_kind, record_id, method, probability, decided_by, linked_at)) AS records,
           countIf(record_kind = 'signup') AS signup_records, countIf(record_kind = 'email') AS email_addresses
    FROM {db}.links FINAL WHERE status = 'matched' GROUP BY voter_id
) AS l
INNER JOIN (
    SELECT voter_id, given_name, family_name, birth_year, address_line1, zip5, precinct_id, county, region, state
    FROM {db}.voters FINAL WHERE voter_id IN (SELECT voter_id FROM {db}.links FINAL WHERE status = 'matched')
) AS v ON v.voter_id = l.voter_id
LEFT JOIN (
    SELECT voter_id, countIf(source = 'signup') AS signups, countIf(kind = 'send') AS email_sends,
           countIf(kind = 'open') AS email_opens, countIf(kind = 'click') AS email_clicks,
           countIf(kind = 'donation') AS donations,
           toUInt64(sumIf(ifNull(amount_cents, 0), kind = 'donation')) AS donations_cents,
           max(occurred_at) AS last_activity_at
    FROM {db}.linked_events FINAL WHERE linked = 1 GROUP BY voter_id
) AS e ON e.voter_id = l.voter_id
LEFT JOIN (
    SELECT c.voter_id AS voter_id,
           arraySort(x -> x.6, groupArray(tuple(hist.record_id, hist.status, hist.voter_id, hist.method,
                                                hist.decided_by, hist.linked_at))) AS match_history
    FROM {db}.link_history AS hist
    INNER JOIN (SELECT record_kind, record_id, voter_id FROM {db}.links FINAL WHERE status = 'matched') AS c
        ON hist.record_kind = c.record_kind AND hist.record_id = c.record_id
    GROUP BY c.voter_id
) AS h ON h.voter_id = l.voter_id""",
)

LINKING_TABLES = (SIGNUP_IDENTITIES, LINKS, LINK_HISTORY, LINK_REVIEWS, LINK_MODELS, LINK_STATE, LINKED_EVENTS)
